"""What the engine says to mistakes people make with losses, clipping and printing (against torch's behaviour)."""

import warnings

import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("value", [0.296654850244522, 3, -1.5e-8])
def test_a_0d_tensor_formats_as_its_number_with_and_without_a_spec(value):
    for spec in ("", ".3f", ">12"):
        ours = format(engine.tensor(value) * 1, spec)
        assert ours == format(torch.tensor(value) * 1, spec)
    assert f"{engine.tensor([1.0, 2.0])}" == str(engine.tensor([1.0, 2.0]))  # not 0-d: its repr


def test_labels_numbered_from_one_are_named():
    x, labels = engine.randn(6, 4), [1, 2, 3, 4, 4, 1]
    with pytest.raises(IndexError):  # torch fails too
        torch.nn.functional.cross_entropy(torch.randn(6, 4), torch.tensor(labels))
    with pytest.raises(IndexError, match=r"target 4 is out of bounds for 4 classes .*numbered from 1\? subtract 1"):
        F.cross_entropy(x, engine.tensor(labels))
    with pytest.raises(IndexError) as caught:  # a class past the end among labels from 0: no such guess
        F.cross_entropy(x, engine.tensor([0, 2, 3, 4, 4, 1]))
    assert "numbered from 1" not in str(caught.value)


def test_one_hot_integer_targets_say_what_to_do():
    labels = [0, 1, 2, 3, 3, 0]
    with pytest.raises(RuntimeError, match="floating point"):  # torch: probabilities must be float
        torch.nn.functional.cross_entropy(torch.randn(6, 4), torch.nn.functional.one_hot(torch.tensor(labels), 4))
    with pytest.raises(RuntimeError, match=r"one-hot labels\?.*target.argmax\(1\).*target.float\(\)"):
        F.cross_entropy(engine.randn(6, 4), F.one_hot(engine.tensor(labels), 4))


def test_clipping_an_exhausted_generator_warns_as_torch_does():
    for lib in (torch, engine):
        params = lib.nn.Linear(2, 2).parameters()
        list(params)
        with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur"):
            assert float(lib.nn.utils.clip_grad_norm_(params, 1.0)) == 0.0


def test_clipping_before_backward_says_nothing_was_clipped():
    net = nn.Linear(2, 2)
    with pytest.warns(UserWarning, match="none of the 2 parameters has a gradient, so nothing was clipped"):
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    net(engine.ones(1, 2)).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)  # after backward: quiet


def test_a_batch_flattened_into_the_features_is_named():
    fc = nn.Linear(128, 32)
    x = engine.randn(32, 8, 4, 4)
    with pytest.raises(RuntimeError):  # torch: "mat1 and mat2 shapes cannot be multiplied (1x4096 and 128x32)"
        torch.nn.Linear(128, 32)(torch.randn(32, 8, 4, 4).view(-1))
    with pytest.raises(RuntimeError, match=r"4096 = 32 x 128: the batch was flattened into the features"):
        fc(x.view(-1))
    assert fc(x.flatten(1)).shape == (32, 32)


def test_a_float_keep_mask_of_zeros_and_ones_warns_where_torch_is_silent():
    q = engine.randn(2, 5, 8)
    keep = engine.ones(5, 5).tril()  # meant: attend to the past only
    with pytest.warns(UserWarning, match="attn_mask is a float mask of 0s and 1s, .* so it masks nothing"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=keep)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with pytest.warns(UserWarning, match="MultiheadAttention: attn_mask is a float mask of 0s and 1s"):
        mha(q, q, q, attn_mask=keep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.scaled_dot_product_attention(q, q, q, attn_mask=keep.bool())  # the bool mask meant
        F.scaled_dot_product_attention(q, q, q, attn_mask=engine.zeros(5, 5))  # an all-zero float mask: no mask
        mha(q, q, q, attn_mask=engine.zeros(5, 5).masked_fill(keep == 0, float("-inf")))


def test_restoring_a_state_dict_kept_without_a_copy_warns():
    import copy

    model = nn.Linear(3, 2)
    best = model.state_dict()  # the live tensors: training goes on changing them
    with pytest.warns(UserWarning, match="load_state_dict: every value is the parameter or buffer"):
        model.load_state_dict(best)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_state_dict(copy.deepcopy(best))  # a snapshot: quiet


def test_segmentation_targets_and_logits_laid_out_wrong_are_named():
    logits = engine.randn(2, 4, 5, 5)
    with pytest.raises(RuntimeError, match=r"target.squeeze\(1\)"):
        F.cross_entropy(logits, engine.randint(0, 4, (2, 1, 5, 5)))
    with pytest.raises(RuntimeError, match=r"channels last\?.*input.permute\(0, 3, 1, 2\)"):
        F.cross_entropy(logits.permute(0, 2, 3, 1), engine.randint(0, 4, (2, 5, 5)))
    with pytest.warns(UserWarning, match="the input has one class .* so the loss is always 0"):
        F.cross_entropy(engine.randn(3, 1, 5, 5), engine.zeros(3, 5, 5, dtype=engine.int64))


def test_backward_of_an_output_without_a_graph_names_no_grad():
    model = nn.Linear(3, 1)
    with engine.no_grad():
        loss = model(engine.randn(4, 3)).sum()
    with pytest.raises(RuntimeError, match=r"element 0 of tensors does not require grad.*under engine.no_grad\(\)"):
        loss.backward()
