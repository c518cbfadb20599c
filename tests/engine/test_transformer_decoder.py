"""TransformerDecoderLayer, TransformerDecoder and Transformer against PyTorch, their module paths and errors.

The torch comparisons reuse test_layers' `compare_with_torch`: same repr and state_dict keys, torch's
weights loaded into ours, then outputs, parameter gradients and input gradients compared (float32,
forward rtol 1e-3, gradients rtol 1e-3 / atol 1e-4). Dropout runs only with p=0 or in eval mode.
"""

import copy
import inspect

import numpy as np
import pytest

import engine
import engine.nn as enn
from engine.events import ModuleEvent, hub
from tests.engine.oracle import torch
from tests.engine.test_layers import R, compare_case

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle of these tests)")

# tgt: 4 positions, memory/src: 5 positions, batch 2, d_model 8
TGT_CAUSAL = np.triu(np.ones((4, 4), bool), 1)
TGT_CAUSAL_FLOAT = np.triu(np.full((4, 4), -np.inf, np.float32), 1)
TGT_PADDING = np.array([[False] * 4, [False, False, False, True]])
SRC_PADDING = np.array([[False] * 5, [False, False, False, True, True]])
SRC_CAUSAL = np.triu(np.ones((5, 5), bool), 1)
MEMORY_MASK = R(4, 5)  # a float (additive) mask over memory positions
EVAL = (False,)


def _layer(nn, **kw):
    return nn.TransformerDecoderLayer(8, 2, 16, **{"dropout": 0.0, **kw})


def _small(nn, **kw):
    return nn.Transformer(8, 2, 2, 2, 16, **{"dropout": 0.0, **kw})


def _custom(nn):
    """A Transformer whose decoder is one the caller built (custom_decoder)."""
    decoder = nn.TransformerDecoder(_layer(nn, batch_first=True), 1, norm=nn.LayerNorm(8))
    return nn.Transformer(8, 2, 1, dim_feedforward=16, dropout=0.0, custom_decoder=decoder, batch_first=True)


# id: (make(nn), inputs, keyword arguments of the call, modes (training flags))
CASES = {
    "DecoderLayer": (lambda nn: _layer(nn), [R(4, 2, 8), R(5, 2, 8)]),
    "DecoderLayer-batch_first-norm_first-gelu-masks": (
        lambda nn: _layer(nn, batch_first=True, norm_first=True, activation="gelu"), [R(2, 4, 8), R(2, 5, 8)],
        {"tgt_mask": TGT_CAUSAL, "tgt_is_causal": True, "tgt_key_padding_mask": TGT_PADDING,
         "memory_key_padding_mask": SRC_PADDING}),
    "DecoderLayer-seq_first-masks": (
        lambda nn: _layer(nn), [R(4, 2, 8), R(5, 2, 8)],
        {"tgt_mask": TGT_CAUSAL_FLOAT, "tgt_key_padding_mask": TGT_PADDING,
         "memory_key_padding_mask": SRC_PADDING}),
    "DecoderLayer-memory_mask-nobias-eps": (
        lambda nn: _layer(nn, bias=False, layer_norm_eps=1e-3, norm_first=True), [R(4, 2, 8), R(5, 2, 8)],
        {"memory_mask": MEMORY_MASK}),
    "DecoderLayer-callable-activation": (
        lambda nn: _layer(nn, activation=nn.functional.silu), [R(4, 2, 8), R(5, 2, 8)]),
    "DecoderLayer-module-activation": (
        lambda nn: _layer(nn, activation=nn.GELU(), batch_first=True), [R(2, 4, 8), R(2, 5, 8)]),
    "DecoderLayer-unbatched": (lambda nn: _layer(nn), [R(4, 8), R(5, 8)], {"tgt_mask": TGT_CAUSAL}),
    "DecoderLayer-dropout-eval": (
        lambda nn: nn.TransformerDecoderLayer(8, 2, 16), [R(4, 2, 8), R(5, 2, 8)], {"tgt_mask": TGT_CAUSAL},
        EVAL),
    "Decoder-norm-batch_first": (
        lambda nn: nn.TransformerDecoder(_layer(nn, batch_first=True), 2, norm=nn.LayerNorm(8)),
        [R(2, 4, 8), R(2, 5, 8)],
        {"tgt_mask": TGT_CAUSAL, "tgt_is_causal": True, "memory_key_padding_mask": SRC_PADDING}),
    "Decoder-no-norm-norm_first": (
        lambda nn: nn.TransformerDecoder(_layer(nn, norm_first=True), 3), [R(4, 2, 8), R(5, 2, 8)],
        {"tgt_key_padding_mask": TGT_PADDING, "memory_mask": MEMORY_MASK}),
    "Transformer": (lambda nn: _small(nn), [R(5, 2, 8), R(4, 2, 8)]),
    "Transformer-all-masks": (
        lambda nn: _small(nn), [R(5, 2, 8), R(4, 2, 8)],
        {"src_mask": SRC_CAUSAL, "tgt_mask": TGT_CAUSAL_FLOAT, "memory_mask": MEMORY_MASK,
         "src_key_padding_mask": SRC_PADDING, "tgt_key_padding_mask": TGT_PADDING,
         "memory_key_padding_mask": SRC_PADDING, "tgt_is_causal": True}),
    "Transformer-batch_first-norm_first-gelu-eval": (
        lambda nn: nn.Transformer(8, 2, 2, 1, 16, activation="gelu", batch_first=True, norm_first=True),
        [R(2, 5, 8), R(2, 4, 8)], {"tgt_mask": TGT_CAUSAL, "src_key_padding_mask": SRC_PADDING,
                                   "memory_key_padding_mask": SRC_PADDING}, EVAL),
    "Transformer-unbatched": (lambda nn: _small(nn), [R(5, 8), R(4, 8)], {"tgt_mask": TGT_CAUSAL}),
    "Transformer-custom_decoder": (lambda nn: _custom(nn), [R(2, 5, 8), R(2, 4, 8)]),
}


@needs_torch
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask and attn_mask is deprecated")
@pytest.mark.parametrize("case", list(CASES))
def test_decoder_family_matches_torch(case):
    compare_case(CASES[case])


@needs_torch
@pytest.mark.parametrize("name", ["TransformerDecoderLayer", "TransformerDecoder", "Transformer"])
def test_signatures_match_torch(name):
    for ours, theirs in ((getattr(enn, name), getattr(torch.nn, name)),
                         (getattr(enn, name).forward, getattr(torch.nn, name).forward)):
        ours, theirs = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
        assert list(ours) == list(theirs)
        for p in ours:
            if not callable(theirs[p].default):  # the activation default is each library's relu
                assert ours[p].default == theirs[p].default, p


@needs_torch
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_generate_square_subsequent_mask_matches_torch(dtype):
    ours = enn.Transformer.generate_square_subsequent_mask(5, dtype=dtype and getattr(engine, dtype))
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=dtype and getattr(torch, dtype))
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_transformer_defaults_build_torch_sized_model():
    layer = enn.TransformerDecoderLayer(16, 4)
    assert layer.linear1.out_features == 2048 and layer.dropout.p == 0.1 and not layer.norm_first
    assert not layer.self_attn.batch_first and layer.norm3.eps == 1e-5
    model = enn.Transformer(16, 4, 2, 3, 32)
    assert (len(model.encoder.layers), len(model.decoder.layers)) == (2, 3)
    assert (model.d_model, model.nhead, model.batch_first) == (16, 4, False)
    # every decoder layer is its own copy
    assert model.decoder.layers[0].linear1.weight is not model.decoder.layers[1].linear1.weight


def test_module_events_name_every_submodule_path():
    model = enn.Transformer(8, 2, 1, 1, 16, dropout=0.0)
    entered = []
    off = hub.subscribe(lambda e: entered.append(e.path) if isinstance(e, ModuleEvent) and e.enter else None,
                        ops=False)
    try:
        tgt_mask = enn.Transformer.generate_square_subsequent_mask(4)
        model(engine.randn(5, 2, 8), engine.randn(4, 2, 8), tgt_mask=tgt_mask).sum().backward()
    finally:
        off()
    assert entered[0] == "Transformer"
    expected = {"Transformer.encoder", "Transformer.encoder.layers.0.self_attn", "Transformer.encoder.norm",
                "Transformer.decoder", "Transformer.decoder.layers.0", "Transformer.decoder.layers.0.self_attn",
                "Transformer.decoder.layers.0.multihead_attn", "Transformer.decoder.layers.0.multihead_attn.out_proj",
                "Transformer.decoder.layers.0.linear2", "Transformer.decoder.layers.0.norm3",
                "Transformer.decoder.norm"}
    assert expected <= set(entered)
    # the encoder runs before the decoder attends to its memory
    assert entered.index("Transformer.encoder.norm") < entered.index("Transformer.decoder.layers.0.multihead_attn")
    assert hub.module_path == ""


def _one_line_error(exc_type, match, fn):
    with pytest.raises(exc_type, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("call, exc_type, match", [
    (lambda: enn.TransformerDecoderLayer(10, 3), ValueError, r"d_model \(10\) must be divisible by nhead \(3\)"),
    (lambda: enn.TransformerEncoderLayer(10, 4), ValueError, r"d_model \(10\) must be divisible by nhead \(4\)"),
    (lambda: enn.Transformer(10, 3), ValueError, r"Transformer: d_model \(10\) must be divisible by nhead"),
    (lambda: enn.TransformerDecoderLayer(8, 2, activation="swish"), RuntimeError,
     "activation should be relu/gelu, not swish"),
    (lambda: enn.Transformer(8, 2, 1, 1, activation="tanh"), RuntimeError, "activation should be relu/gelu"),
], ids=["decoder-layer-heads", "encoder-layer-heads", "transformer-heads", "decoder-activation",
        "transformer-activation"])
def test_bad_construction_arguments_say_what_was_wrong(call, exc_type, match):
    _one_line_error(exc_type, match, call)


def _decoder_layer(batch_first=False):
    return enn.TransformerDecoderLayer(8, 2, 16, batch_first=batch_first)


@pytest.mark.parametrize("call, match", [
    (lambda: _decoder_layer()(engine.randn(4, 2, 6), engine.randn(5, 2, 8)),
     r"tgt has 6 features, expected d_model 8 \(tgt shape \(4, 2, 6\)"),
    (lambda: _decoder_layer()(engine.randn(4, 2, 8), engine.randn(5, 2, 7)),
     r"memory has 7 features, expected d_model 8"),
    (lambda: _decoder_layer()(engine.randn(4, 2, 8), engine.randn(5, 3, 8)),
     r"same batch size \(dim 1 with batch_first=False\), got tgt shape \(4, 2, 8\), memory shape \(5, 3, 8\)"),
    (lambda: _decoder_layer(batch_first=True)(engine.randn(2, 4, 8), engine.randn(3, 4, 8)),
     r"same batch size \(dim 0 with batch_first=True\)"),
    (lambda: _decoder_layer()(engine.randn(4, 2, 8), engine.randn(5, 8)),
     r"must both be 3-D \(batched\) or both 2-D \(unbatched\)"),
    (lambda: enn.TransformerDecoder(_decoder_layer(), 2)(engine.randn(4, 2, 8), engine.randn(5, 2, 4)),
     r"TransformerDecoderLayer: memory has 4 features"),
], ids=["tgt-features", "memory-features", "batch-seq_first", "batch-batch_first", "ndim", "decoder-stack"])
def test_decoder_shape_errors_name_tgt_and_memory(call, match):
    _one_line_error(ValueError, match, call)


@pytest.mark.parametrize("batch_first, src, tgt, match", [
    (False, (5, 2, 8), (4, 3, 8), r"the batch number of src and tgt must be equal \(src shape \(5, 2, 8\)"),
    (True, (2, 5, 8), (3, 4, 8), "the batch number of src and tgt must be equal"),
    (False, (5, 2, 8), (4, 2, 6), r"the feature number of src and tgt must be equal to d_model \(8\)"),
    (True, (2, 5, 4), (2, 4, 8), r"equal to d_model \(8\), got src shape \(2, 5, 4\)"),
    (False, (5, 2, 8), (4, 8), r"src and tgt must both be 3-D \(batched\) or both 2-D"),
])
def test_transformer_shape_errors_use_torch_wording(batch_first, src, tgt, match):
    model = enn.Transformer(8, 2, 1, 1, 16, batch_first=batch_first)
    _one_line_error(RuntimeError, match, lambda: model(engine.randn(*src), engine.randn(*tgt)))


# ---- GPU: the same model gives the same numbers on a CUDA device ---------------------------------------
@pytest.mark.gpu
def test_transformer_on_gpu_matches_cpu():
    try:
        engine.zeros(1, device="cuda")
    except RuntimeError as err:  # the engine says why: no CuPy, or no device
        pytest.skip(f"needs a CUDA GPU: {err}")
    cpu = _small(enn, batch_first=True, norm_first=True)
    gpu = copy.deepcopy(cpu).to("cuda")
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        src = engine.tensor(R(2, 5, 8), device=device, requires_grad=True)
        tgt = engine.tensor(R(2, 4, 8), device=device, requires_grad=True)
        mask = enn.Transformer.generate_square_subsequent_mask(4, device=device)
        padding = engine.tensor(SRC_PADDING, device=device)
        out = model(src, tgt, tgt_mask=mask, tgt_is_causal=True, src_key_padding_mask=padding,
                    memory_key_padding_mask=padding)
        (out * engine.tensor(R(2, 4, 8), device=device)).sum().backward()
        assert out.device.type == device
        results.append([out.detach().cpu().numpy(), src.grad.cpu().numpy(), tgt.grad.cpu().numpy()]
                       + [p.grad.cpu().numpy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)
