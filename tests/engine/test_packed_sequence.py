"""Packed sequences (engine.nn.utils.rnn) and RNN, LSTM, GRU fed with them, against PyTorch on identical weights:
outputs, final states at each sequence's own last step, gradients of the inputs and of every weight."""

import itertools

import numpy as np
import pytest

import engine
import engine.nn as enn
from engine.events import ModuleEvent
from engine.nn.utils import rnn
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, finite_difference_check, needs_torch, torch

FWD = dict(rtol=1e-3, atol=1e-6)
GRAD = dict(rtol=GRAD_RTOL, atol=GRAD_ATOL)
T, B, I, H = 5, 4, 3, 4


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def grad_of(t):
    return t.grad.numpy()


# ---- RNN, LSTM and GRU on packed input ------------------------------------------------------------------
RECURRENT = list(itertools.product(["RNN", "LSTM", "GRU"], [1, 2], [False, True], [False, True], [True, False]))


def _state(mode, t):
    """The (h, c) pair of an LSTM, or the lone h of RNN and GRU, as a list of tensors."""
    return list(t) if mode == "LSTM" else [t]


@needs_torch
@pytest.mark.parametrize("mode, layers, bidirectional, batch_first, enforce_sorted", RECURRENT)
def test_recurrent_layer_on_packed_input_matches_torch(mode, layers, bidirectional, batch_first, enforce_sorted):
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    x = rand(*((B, T, I) if batch_first else (T, B, I)))
    h0 = rand(layers * (2 if bidirectional else 1), B, H, seed=1)
    make = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    theirs, ours = getattr(torch.nn, mode)(I, H, **make), getattr(enn, mode)(I, H, **make)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    results = []
    for lib, nn_utils, model in ((torch, torch.nn.utils.rnn, theirs), (engine, rnn, ours)):
        xs, hs = lib.tensor(x, requires_grad=True), lib.tensor(h0, requires_grad=True)
        packed = nn_utils.pack_padded_sequence(xs, lengths, batch_first=batch_first,
                                               enforce_sorted=enforce_sorted)
        out, state = model(packed, (hs, hs * 2) if mode == "LSTM" else hs)
        assert type(out).__name__ == "PackedSequence"
        padded, out_lengths = nn_utils.pad_packed_sequence(out, batch_first=batch_first)
        outputs = [out.data, padded, *_state(mode, state)]
        r = [lib.tensor(rand(*o.shape, seed=10 + i)) for i, o in enumerate(outputs)]
        sum((o * w).sum() for o, w in zip(outputs, r)).backward()
        results.append((out, outputs, out_lengths.tolist(), xs, hs, dict(model.named_parameters())))
    (t_out, t_outputs, t_len, t_x, t_h, t_params), (e_out, e_outputs, e_len, e_x, e_h, e_params) = results
    assert e_len == t_len == lengths
    assert e_out.batch_sizes.tolist() == t_out.batch_sizes.tolist()
    for name in ("sorted_indices", "unsorted_indices"):
        t_idx, e_idx = getattr(t_out, name), getattr(e_out, name)
        assert (e_idx is None and t_idx is None) or e_idx.tolist() == t_idx.tolist()
    for i, (t, e) in enumerate(zip(t_outputs, e_outputs)):
        assert tuple(e.shape) == tuple(t.shape), i
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), err_msg=f"output {i}", **FWD)
    np.testing.assert_allclose(grad_of(e_x), grad_of(t_x), err_msg="input", **GRAD)
    np.testing.assert_allclose(grad_of(e_h), grad_of(t_h), err_msg="h0", **GRAD)
    assert e_params.keys() == t_params.keys()
    for name, p in e_params.items():
        np.testing.assert_allclose(grad_of(p), grad_of(t_params[name]), err_msg=name, **GRAD)


@needs_torch
def test_lstm_with_projection_on_packed_input_matches_torch():
    x, lengths = rand(T, B, I), [2, 5, 4, 1]
    theirs = torch.nn.LSTM(I, H, 2, bidirectional=True, proj_size=2)
    ours = enn.LSTM(I, H, 2, bidirectional=True, proj_size=2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    t_out, (t_h, t_c) = theirs(torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lengths,
                                                                        enforce_sorted=False))
    e_out, (e_h, e_c) = ours(rnn.pack_padded_sequence(engine.tensor(x), lengths, enforce_sorted=False))
    for t, e in ((t_out.data, e_out.data), (t_h, e_h), (t_c, e_c)):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), **FWD)


def test_final_state_is_each_sequence_at_its_own_last_step():
    lengths = [2, 5, 1, 4]
    gru = enn.GRU(I, H, bidirectional=True, batch_first=True)
    x = engine.tensor(rand(B, T, I))
    out, h_n = gru(rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    padded, _ = rnn.pad_packed_sequence(out, batch_first=True, padding_value=7.0)
    padded, h_n = padded.detach().numpy(), h_n.detach().numpy()
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(h_n[0, b], padded[b, n - 1, :H], **FWD)  # forward: after step n - 1
        np.testing.assert_allclose(h_n[1, b], padded[b, 0, H:], **FWD)  # reverse: after step 0
        assert np.all(padded[b, n:] == 7.0)  # nothing written past a sequence's end
        # the same sequence alone, unpadded, gives the same numbers: padding never leaks in
        alone, h_alone = gru(x[b:b + 1, :n])
        np.testing.assert_allclose(alone.detach().numpy()[0], padded[b, :n], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h_alone.detach().numpy()[:, 0], h_n[:, b], rtol=1e-5, atol=1e-6)


def test_packed_lstm_gradients_match_finite_differences():
    lstm = enn.LSTM(2, 3, bidirectional=True, dtype=engine.float64)

    def fn(x):
        out, (h, c) = lstm(rnn.pack_padded_sequence(x, [1, 3, 2], enforce_sorted=False))
        padded, _ = rnn.pad_packed_sequence(out, padding_value=0.5)
        return engine.cat([padded.reshape(-1), h.reshape(-1), c.reshape(-1)])

    finite_difference_check(fn, [np.random.default_rng(3).standard_normal((3, 3, 2))])


def test_packed_input_is_checked():
    lstm = enn.LSTM(I, H)
    packed = rnn.pack_sequence([engine.randn(3, I), engine.randn(2, I)])
    with pytest.raises(ValueError, match=r"LSTM: expected h_0 of shape \[1, 2, 4\], got \[1, 3, 4\]"):
        lstm(packed, (engine.zeros(1, 3, H), engine.zeros(1, 3, H)))
    with pytest.raises(ValueError, match=r"input.size\(-1\) must be equal to input_size. Expected 3, got 2"):
        lstm(rnn.pack_sequence([engine.randn(3, 2)]))


def test_packed_input_under_a_listening_debugger_reports_its_module_call():
    seen = []
    off = engine.hub.subscribe(seen.append)
    try:
        out, h = enn.GRU(I, H)(rnn.pack_sequence([engine.randn(3, I), engine.randn(1, I)]))
    finally:
        off()
    assert isinstance(out, rnn.PackedSequence) and tuple(h.shape) == (1, 2, H)
    exits = [e for e in seen if isinstance(e, ModuleEvent) and e.cls == "GRU" and not e.enter]
    assert len(exits) == 1 and {out.data.id, h.id} <= set(exits[0].tensors)


# ---- packing, padding and back -----------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("batch_first, enforce_sorted, total_length, as_tensor",
                         [(False, True, None, False), (True, True, 7, True), (False, False, 6, True),
                          (True, False, None, False)])
def test_pack_then_pad_matches_torch_and_round_trips(batch_first, enforce_sorted, total_length, as_tensor):
    lengths = [5, 4, 4, 2] if enforce_sorted else [4, 2, 5, 4]
    x = rand(*((B, T, I) if batch_first else (T, B, I)))
    results = []
    for lib, nn_utils in ((torch, torch.nn.utils.rnn), (engine, rnn)):
        xs = lib.tensor(x, requires_grad=True)
        packed = nn_utils.pack_padded_sequence(xs, lib.tensor(lengths) if as_tensor else lengths,
                                               batch_first=batch_first, enforce_sorted=enforce_sorted)
        padded, out_lengths = nn_utils.pad_packed_sequence(packed, batch_first=batch_first, padding_value=-2.5,
                                                           total_length=total_length)
        (padded * lib.tensor(rand(*padded.shape, seed=4))).sum().backward()
        results.append((packed, padded, out_lengths, xs))
    (t_packed, t_padded, t_len, t_x), (e_packed, e_padded, e_len, e_x) = results
    np.testing.assert_array_equal(e_packed.data.detach().numpy(), t_packed.data.detach().numpy())
    assert e_packed.batch_sizes.tolist() == t_packed.batch_sizes.tolist()
    assert e_packed.batch_sizes.dtype == engine.int64 and e_packed.batch_sizes.device.type == "cpu"
    np.testing.assert_array_equal(e_padded.detach().numpy(), t_padded.detach().numpy())
    assert e_len.tolist() == t_len.tolist() == lengths and e_len.dtype == engine.int64
    np.testing.assert_array_equal(grad_of(e_x), grad_of(t_x))
    # round trip: the real steps come back where they were; the rest is padding
    steps = e_padded.shape[1 if batch_first else 0]
    assert steps == (total_length or max(lengths))
    back = e_padded.detach().numpy()
    for b, n in enumerate(lengths):
        mine, orig = (back[b], x[b]) if batch_first else (back[:, b], x[:, b])
        np.testing.assert_array_equal(mine[:n], orig[:n])
        assert np.all(mine[n:] == -2.5)


@needs_torch
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_unpack_and_unpad_match_torch(enforce_sorted):
    arrays = [rand(4, 2, seed=1), rand(3, 2, seed=2), rand(1, 2, seed=3)]
    if not enforce_sorted:
        arrays = arrays[::-1]
    ours = [engine.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    e_packed = rnn.pack_sequence(ours, enforce_sorted=enforce_sorted)
    t_packed = torch.nn.utils.rnn.pack_sequence(theirs, enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(e_packed.data.detach().numpy(), t_packed.data.detach().numpy())
    unpacked = rnn.unpack_sequence(e_packed)
    assert [tuple(u.shape) for u in unpacked] == [a.shape for a in arrays]
    for u, a in zip(unpacked, arrays):
        np.testing.assert_array_equal(u.detach().numpy(), a)
    sum((u * (i + 1)).sum() for i, u in enumerate(unpacked)).backward()
    for i, s in enumerate(ours):
        np.testing.assert_array_equal(grad_of(s), np.full(s.shape, i + 1.0))
    for batch_first in (False, True):
        padded = rnn.pad_sequence(ours, batch_first=batch_first)
        pieces = rnn.unpad_sequence(padded, engine.tensor([len(a) for a in arrays]), batch_first=batch_first)
        t_pieces = torch.nn.utils.rnn.unpad_sequence(
            torch.nn.utils.rnn.pad_sequence(theirs, batch_first=batch_first),
            torch.tensor([len(a) for a in arrays]), batch_first=batch_first)
        for p, t in zip(pieces, t_pieces):
            np.testing.assert_array_equal(p.detach().numpy(), t.detach().numpy())


def test_packed_sequence_is_a_named_tuple_that_moves_its_data():
    packed = rnn.pack_padded_sequence(engine.randn(3, 2, 4), [2, 3], enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    assert isinstance(packed, tuple) and data is packed.data
    assert batch_sizes.tolist() == [2, 2, 1] and sorted_indices.tolist() == [1, 0]
    assert unsorted_indices.tolist() == [1, 0]
    assert repr(packed).startswith("PackedSequence(data=tensor(")
    double = packed.to(engine.float64)
    assert isinstance(double, rnn.PackedSequence) and double.data.dtype == engine.float64
    assert double.batch_sizes is packed.batch_sizes and double.sorted_indices.tolist() == [1, 0]
    assert packed.double().data.dtype == engine.float64 and not packed.is_cuda
    assert packed.to("cpu") is packed
    # given only the sorting, the way back is derived
    made = rnn.PackedSequence(data, batch_sizes, engine.tensor([2, 0, 1]))
    assert made.unsorted_indices.tolist() == [1, 2, 0]


# ---- what a user gets wrong -----------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda x: rnn.pack_padded_sequence(x, [2, 3, 1]), RuntimeError,
     r"`lengths` array must be sorted in decreasing order when `enforce_sorted` is True \(got \[2, 3, 1\]\)\. "
     r"You can pass `enforce_sorted=False`"),
    (lambda x: rnn.pack_padded_sequence(x, [3, 0, 1], enforce_sorted=False), RuntimeError,
     r"length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"),
    (lambda x: rnn.pack_padded_sequence(x, [3, 2, -1]), RuntimeError, "has to be greater than 0"),
    (lambda x: rnn.pack_padded_sequence(x, [5, 2, 1]), ValueError,
     r"lengths \[5, 2, 1\] name up to 5 steps, but the input has 4 \(input shape \(4, 3, 2\), batch_first=False\)"),
    (lambda x: rnn.pack_padded_sequence(x, [3, 2, 1], batch_first=True), ValueError,
     r"expected `len\(lengths\)` to be equal to batch_size, but got 3 \(batch_size=4\)"),
    (lambda x: rnn.pack_padded_sequence(x, [3, 2]), ValueError,
     r"expected `len\(lengths\)` to be equal to batch_size, but got 2 \(batch_size=3\)"),
    (lambda x: rnn.pack_padded_sequence(x, [[3, 2, 1]]), ValueError, "lengths must be a 1-D list or tensor"),
    (lambda x: rnn.pack_padded_sequence(x, [3.5, 2, 1]), ValueError, "lengths must be whole numbers"),
    (lambda x: rnn.pack_padded_sequence(engine.zeros(0, 3, 2), [1, 1, 1]), RuntimeError, "cannot pack empty"),
    (lambda x: rnn.pack_padded_sequence(engine.zeros(3), [3]), ValueError,
     r"expected a padded batch \(T, B, \*\) or \(B, T, \*\), got shape \(3,\)"),
    (lambda x: rnn.pad_packed_sequence(rnn.pack_padded_sequence(x, [4, 2, 1]), total_length=3), ValueError,
     "Expected total_length to be at least the length of the longest sequence in input, but got "
     "total_length=3 and max sequence length being 4"),
    (lambda x: rnn.pad_packed_sequence(x), TypeError, "pad_packed_sequence: expected a PackedSequence, got Tensor"),
    (lambda x: rnn.PackedSequence(x, engine.tensor([1.0, 1.0])), ValueError,
     "batch_sizes must be a 1-D int64 CPU tensor"),
    (lambda x: rnn.pack_sequence([]), ValueError, "received an empty list of sequences"),
    (lambda x: rnn.unpad_sequence(x, [5, 1, 1]), ValueError, r"lengths \[5, 1, 1\] must lie in \[0, 4\]"),
])
def test_bad_input_says_what_was_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call(engine.randn(4, 3, 2))


@needs_torch
def test_float_lengths_are_read_as_torch_reads_them():
    x = rand(4, 3, 2)
    ours = rnn.pack_padded_sequence(engine.tensor(x), engine.tensor([4.0, 2.0, 1.0]))
    theirs = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor([4.0, 2.0, 1.0]))
    assert ours.batch_sizes.tolist() == theirs.batch_sizes.tolist()


# ---- a seq2seq training step that uses them -----------------------------------------------------------------
def _seq2seq(nn):
    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(7, 3)
            self.encoder = nn.GRU(3, 4, batch_first=True, bidirectional=True)
            self.bridge = nn.Linear(8, 4)
            self.decoder = nn.LSTM(3, 4, num_layers=2, batch_first=True)
            self.head = nn.Linear(4, 7)

        def forward(self, source, source_lengths, target_in, target_lengths, utils):
            packed = utils.pack_padded_sequence(self.embed(source), source_lengths, batch_first=True,
                                                enforce_sorted=False)
            _, h = self.encoder(packed)  # (2, N, 4): each source sequence at its own end
            h0 = self.bridge(h.transpose(0, 1).reshape(h.shape[1], 8)).tanh()
            state = (h0.unsqueeze(0).repeat(2, 1, 1), h0.unsqueeze(0).repeat(2, 1, 1) * 0)
            out, _ = self.decoder(utils.pack_padded_sequence(self.embed(target_in), target_lengths,
                                                             batch_first=True, enforce_sorted=False), state)
            return self.head(out.data), out  # logits of the real target steps only, in packed order

    return Seq2Seq()


@needs_torch
def test_seq2seq_training_steps_match_torch():
    rng = np.random.default_rng(5)
    source = rng.integers(1, 7, (3, 6))
    target = rng.integers(1, 7, (3, 5))
    source_lengths, target_lengths = [4, 6, 2], [3, 2, 5]
    theirs, ours = _seq2seq(torch.nn), _seq2seq(enn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    runs = []
    for lib, model, utils in ((torch, theirs, torch.nn.utils.rnn), (engine, ours, rnn)):
        losses = []
        for _ in range(3):
            model.zero_grad()
            logits, _ = model(lib.tensor(source), source_lengths, lib.tensor(target), target_lengths, utils)
            # the labels of the real steps, in the packed order of the decoder's output
            labels = utils.pack_padded_sequence(lib.tensor(np.roll(target, -1, 1)), target_lengths,
                                                batch_first=True, enforce_sorted=False).data
            loss = (torch.nn.functional if lib is torch else engine.nn.functional).cross_entropy(logits, labels)
            loss.backward()
            with lib.no_grad():  # plain SGD by hand: torch's first optimizer step costs seconds of imports
                for p in model.parameters():
                    p -= 0.5 * p.grad
            losses.append(loss.item())
        runs.append((losses, {k: v.detach().numpy() for k, v in model.state_dict().items()}))
    (t_losses, t_state), (e_losses, e_state) = runs
    np.testing.assert_allclose(e_losses, t_losses, rtol=1e-4)
    assert e_losses[-1] < e_losses[0]
    for name, value in t_state.items():
        np.testing.assert_allclose(e_state[name], value, rtol=1e-3, atol=1e-4, err_msg=name)


# ---- GPU ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_packed_lstm_on_gpu_matches_cpu():
    cuda_or_skip()
    cpu = enn.LSTM(I, H, 2, bidirectional=True, batch_first=True)
    gpu = enn.LSTM(I, H, 2, bidirectional=True, batch_first=True, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x, lengths = rand(B, T, I), [3, 5, 1, 4]
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        xs = engine.tensor(x, device=device, requires_grad=True)
        packed = rnn.pack_padded_sequence(xs, engine.tensor(lengths), batch_first=True, enforce_sorted=False)
        assert packed.data.device.type == packed.sorted_indices.device.type == device
        out, (h, c) = model(packed)
        padded, out_lengths = rnn.pad_packed_sequence(out, batch_first=True)
        assert padded.device.type == device and out_lengths.device.type == "cpu"
        (padded.sum() + (h * 2).sum() + (c * 3).sum()).backward()
        results.append([t.detach().cpu().numpy() for t in (padded, h, c, xs.grad)]
                       + [p.grad.cpu().numpy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)
    moved = rnn.pack_sequence([engine.randn(2, I), engine.randn(3, I)], enforce_sorted=False).to("cuda")
    assert moved.is_cuda and moved.sorted_indices.is_cuda and not moved.batch_sizes.is_cuda
    with pytest.raises(ValueError, match="lengths must be a list or a 1-D CPU tensor, got a tensor on cuda"):
        rnn.pack_padded_sequence(engine.randn(3, 2, I, device="cuda"), engine.tensor([3, 2], device="cuda"))
