"""What a fifteenth round of ported programs met: a conv subclass calling _conv_forward (quantization-aware
training), grouped-query attention, an RNN's flatten_parameters, is_contiguous with a memory format, and the old
weight_norm's deprecation warning; then the meta copy of torch's ensembling recipe, to_empty and get_buffer."""

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import needs_torch, torch


def test_a_conv_subclass_convolves_its_own_weight_through_conv_forward():
    class Standardised(nn.Conv2d):  # weight standardisation, as QAT and LoRA subclasses do it
        def forward(self, x):
            w = self.weight
            w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / w.std(dim=(1, 2, 3), keepdim=True)
            return self._conv_forward(x, w, self.bias)

    engine.manual_seed(0)
    layer = Standardised(2, 3, 3, padding=1, padding_mode="reflect")
    x = engine.randn(1, 2, 5, 5)
    w = layer.weight.detach()
    w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / w.std(dim=(1, 2, 3), keepdim=True)
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, layer.bias)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == layer.weight.shape


@needs_torch
def test_grouped_query_attention_shares_each_key_head_with_a_group_of_query_heads():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((2, 8, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3))]
    ours = [engine.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = F.scaled_dot_product_attention(*ours, is_causal=True, enable_gqa=True)
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=True, enable_gqa=True)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(engine.ShapeError, match="with enable_gqa, the 8 query heads must be a multiple of the key's"):
        F.scaled_dot_product_attention(ours[0], engine.ones(2, 3, 5, 4), engine.ones(2, 3, 5, 3), enable_gqa=True)


def test_flatten_parameters_is_there_and_changes_nothing():
    gru = nn.GRU(3, 4)
    before = [p.detach().numpy().copy() for p in gru.parameters()]
    assert gru.flatten_parameters() is None
    assert all(np.array_equal(a, p.detach().numpy()) for a, p in zip(before, gru.parameters()))


def test_is_contiguous_takes_a_memory_format_and_tells_the_truth_about_the_layout():
    x = engine.ones(2, 3, 4, 5)
    assert x.is_contiguous() and x.is_contiguous(memory_format=engine.contiguous_format)
    assert not x.is_contiguous(memory_format=engine.channels_last)  # to(channels_last) is a hint: still NCHW
    nhwc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert nhwc.is_contiguous(memory_format=engine.channels_last) and not nhwc.is_contiguous()
    with pytest.raises(TypeError, match=r"is_contiguous\(\): memory_format must be engine.contiguous_format"):
        x.is_contiguous(memory_format="nhwc")


def test_the_old_weight_norm_warns_that_it_is_deprecated_at_the_users_line():
    with pytest.warns(FutureWarning, match="engine.nn.utils.weight_norm is deprecated in favor of "
                                          "engine.nn.utils.parametrizations.weight_norm") as seen:
        nn.utils.weight_norm(nn.Linear(2, 2))
    assert seen[0].filename == __file__


def test_torchs_ensembling_recipe_runs_with_a_warning_for_its_meta_copy():
    import copy

    from engine.func import functional_call, stack_module_state

    models = [nn.Linear(3, 2) for _ in range(4)]
    params, buffers = stack_module_state(models)
    with pytest.warns(UserWarning, match=r"Linear.to\('meta'\): the engine has no meta device") as seen:
        base = copy.deepcopy(models[0]).to("meta")
    assert seen[0].filename == __file__
    x = engine.randn(5, 3)
    out = engine.vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))(params, buffers, x)
    for i, m in enumerate(models):
        np.testing.assert_allclose(out[i].detach().numpy(), m(x).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_to_empty_gives_storage_to_be_initialised_after():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    weight = m[0].weight
    assert m.to_empty(device="cpu") is m
    assert m[0].weight is weight and m[0].weight.shape == (2, 3)  # the same Parameter, new storage
    for p in m.parameters():
        nn.init.zeros_(p)
    assert all(float(p.abs().sum()) == 0 for p in m.parameters())
    assert m[1].running_mean.shape == (2,)


def test_get_buffer_and_the_non_persistent_set_have_torchs_names():
    m = nn.Sequential(nn.BatchNorm1d(3))
    m[0].register_buffer("scratch", engine.ones(2), persistent=False)
    assert m.get_buffer("0.running_mean") is m[0].running_mean
    assert m[0]._non_persistent_buffers_set == {"scratch"}
    with pytest.raises(AttributeError, match="BatchNorm1d has no buffer 'nope'"):
        m.get_buffer("0.nope")
