"""engine.Generator and `generator=` as PyTorch scripts use them: `g = torch.Generator().manual_seed(0)`."""

from types import SimpleNamespace

import numpy as np
import pytest

import engine
import engine.nn
from engine.data import (
    DataLoader,
    RandomSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)
from tests.engine.oracle import needs_torch, torch

ENGINE = SimpleNamespace(t=engine, init=engine.nn.init, data=engine.data)


def _values(out) -> list:
    """What a draw gave, as plain lists (tensors, lists of Subsets, samplers and loaders alike)."""
    if isinstance(out, int):
        return out
    if isinstance(out, list | tuple):
        return [_values(x) for x in out]
    if hasattr(out, "tolist"):
        return out.tolist()
    if type(out).__name__ == "Subset":
        return list(out.indices)
    return [_values(x) for x in out]  # a sampler or a loader: one epoch


def _squares(lib):
    return lib.t.zeros(4, 6)


# Every call that takes `generator=` in torch, written once for both libraries: lib.t is engine or torch.
CALLS = {
    "rand": lambda lib, g: lib.t.rand(2, 3, generator=g),
    "randn": lambda lib, g: lib.t.randn(2, 3, generator=g),
    "randint": lambda lib, g: lib.t.randint(0, 100, (2, 3), generator=g),
    "randint(high, size)": lambda lib, g: lib.t.randint(100, (5,), generator=g),
    "randperm": lambda lib, g: lib.t.randperm(10, generator=g),
    "rand_like": lambda lib, g: lib.t.rand_like(lib.t.zeros(3), generator=g),
    "randn_like": lambda lib, g: lib.t.randn_like(lib.t.zeros(3), generator=g),
    "randint_like": lambda lib, g: lib.t.randint_like(lib.t.zeros(3), 50, generator=g),
    "normal(float, float, size)": lambda lib, g: lib.t.normal(2.0, 3.0, (4,), generator=g),
    "normal(tensor, tensor)": lambda lib, g: lib.t.normal(lib.t.zeros(4), lib.t.ones(4), generator=g),
    "normal(tensor, float)": lambda lib, g: lib.t.normal(lib.t.zeros(4), 2.0, generator=g),
    "normal(float, tensor)": lambda lib, g: lib.t.normal(1.0, lib.t.ones(4), generator=g),
    "bernoulli": lambda lib, g: lib.t.bernoulli(lib.t.full((8,), 0.5), generator=g),
    "poisson": lambda lib, g: lib.t.poisson(lib.t.full((6,), 4.0), generator=g),
    "multinomial": lambda lib, g: lib.t.multinomial(lib.t.ones(2, 5), 3, generator=g),
    "multinomial(replacement)": lambda lib, g: lib.t.multinomial(lib.t.ones(5), 8, True, generator=g),
    "Tensor.multinomial": lambda lib, g: lib.t.ones(6).multinomial(2, generator=g),
    "Tensor.bernoulli": lambda lib, g: lib.t.full((8,), 0.3).bernoulli(generator=g),
    "Tensor.normal_": lambda lib, g: lib.t.zeros(5).normal_(1.0, 2.0, generator=g),
    "Tensor.uniform_": lambda lib, g: lib.t.zeros(5).uniform_(-1, 1, generator=g),
    "Tensor.bernoulli_": lambda lib, g: lib.t.zeros(8).bernoulli_(0.5, generator=g),
    "Tensor.exponential_": lambda lib, g: lib.t.zeros(5).exponential_(2.0, generator=g),
    "Tensor.random_": lambda lib, g: lib.t.zeros(5).random_(0, 10, generator=g),
    "Tensor.geometric_": lambda lib, g: lib.t.zeros(5).geometric_(0.3, generator=g),
    "Tensor.log_normal_": lambda lib, g: lib.t.zeros(5).log_normal_(generator=g),
    "Tensor.cauchy_": lambda lib, g: lib.t.zeros(5).cauchy_(generator=g),
    "init.uniform_": lambda lib, g: lib.init.uniform_(_squares(lib), generator=g),
    "init.normal_": lambda lib, g: lib.init.normal_(_squares(lib), generator=g),
    "init.trunc_normal_": lambda lib, g: lib.init.trunc_normal_(_squares(lib), generator=g),
    "init.xavier_uniform_": lambda lib, g: lib.init.xavier_uniform_(_squares(lib), generator=g),
    "init.xavier_normal_": lambda lib, g: lib.init.xavier_normal_(_squares(lib), generator=g),
    "init.kaiming_uniform_": lambda lib, g: lib.init.kaiming_uniform_(_squares(lib), generator=g),
    "init.kaiming_normal_": lambda lib, g: lib.init.kaiming_normal_(_squares(lib), generator=g),
    "init.orthogonal_": lambda lib, g: lib.init.orthogonal_(_squares(lib), generator=g),
    "random_split": lambda lib, g: lib.data.random_split(range(10), [3, 7], generator=g),
    "RandomSampler": lambda lib, g: lib.data.RandomSampler(range(10), generator=g),
    "RandomSampler(replacement)": lambda lib, g: lib.data.RandomSampler(range(10), True, 6, generator=g),
    "SubsetRandomSampler": lambda lib, g: lib.data.SubsetRandomSampler([1, 4, 6, 8], generator=g),
    "WeightedRandomSampler": lambda lib, g: lib.data.WeightedRandomSampler([1.0, 2.0, 3.0], 6, generator=g),
    "DataLoader": lambda lib, g: lib.data.DataLoader(
        lib.data.TensorDataset(lib.t.arange(10)), batch_size=4, shuffle=True, generator=g),
}


@pytest.mark.parametrize("name", CALLS)
def test_every_generator_argument_repeats_with_the_seed_and_leaves_the_global_generator_alone(name):
    call = CALLS[name]
    engine.manual_seed(11)
    expected_global = engine.rand(4).tolist()
    engine.manual_seed(11)
    first = _values(call(ENGINE, engine.Generator().manual_seed(3)))
    assert engine.rand(4).tolist() == expected_global, "drawing with g moved the global generator"
    engine.rand(100)  # global draws in between change nothing for g
    assert _values(call(ENGINE, engine.Generator().manual_seed(3))) == first
    others = [_values(call(ENGINE, engine.Generator().manual_seed(s))) for s in (4, 5, 6)]
    assert any(o != first for o in others), "another seed gives other numbers"


@needs_torch
@pytest.mark.parametrize("name", CALLS)
def test_the_calls_are_torchs_and_give_its_shapes(name):
    # the same source line runs on both libraries; the numbers differ (other algorithms), the shapes do not
    lib = SimpleNamespace(t=torch, init=torch.nn.init, data=torch.utils.data)
    theirs = _values(CALLS[name](lib, torch.Generator().manual_seed(3)))
    ours = _values(CALLS[name](ENGINE, engine.Generator().manual_seed(3)))
    assert np.shape(np.array(ours, dtype=object)) == np.shape(np.array(theirs, dtype=object))


def test_a_generator_seeded_like_the_global_one_draws_the_same_numbers():
    # as in torch: Generator().manual_seed(s) and manual_seed(s) start the same stream
    g = engine.Generator().manual_seed(21)
    engine.manual_seed(21)
    assert engine.randn(5, generator=g).tolist() == engine.randn(5).tolist()


def test_a_numpy_generator_is_still_taken_for_cpu_draws():
    a = engine.randn(4, generator=np.random.default_rng(2)).tolist()
    assert engine.randn(4, generator=np.random.default_rng(2)).tolist() == a


@needs_torch
def test_generator_methods_behave_as_torchs():
    ours, theirs = engine.Generator(), torch.Generator()
    assert ours.initial_seed() == theirs.initial_seed() == 67280421310721
    assert ours.manual_seed(5) is ours and theirs.manual_seed(5) is theirs
    assert ours.initial_seed() == theirs.initial_seed() == 5
    assert ours.manual_seed(-1).initial_seed() == theirs.manual_seed(-1).initial_seed() == 2 ** 64 - 1
    assert str(ours.device) == str(theirs.device) == "cpu"
    s = ours.seed()
    assert isinstance(s, int) and ours.initial_seed() == s
    assert engine.default_generator.device == "cpu"


def test_engine_seed_reseeds_the_global_generators_unpredictably():
    s = engine.seed()
    assert engine.initial_seed() == s and engine.default_generator.initial_seed() == s
    a = engine.randn(3).tolist()
    engine.manual_seed(s)
    assert engine.randn(3).tolist() == a
    assert engine.seed() != s


def test_manual_seed_returns_the_default_generator():
    assert engine.manual_seed(0) is engine.default_generator


def test_state_round_trips_and_survives_a_checkpoint(tmp_path):
    g = engine.Generator().manual_seed(9)
    engine.randn(3, generator=g)
    state = g.get_state()
    assert state.dtype == engine.uint8 and state.ndim == 1
    a = engine.randn(6, generator=g).tolist()
    engine.save({"rng": state}, tmp_path / "rng.pt")
    other = engine.Generator().set_state(engine.load(tmp_path / "rng.pt")["rng"])
    assert engine.randn(6, generator=other).tolist() == a and other.initial_seed() == 9
    assert g.set_state(state) is g and engine.randn(6, generator=g).tolist() == a


def test_the_global_state_is_a_uint8_tensor_as_torchs():
    engine.manual_seed(4)
    state = engine.get_rng_state()
    assert state.dtype == engine.uint8
    a = engine.rand(3).tolist()
    engine.set_rng_state(state)
    assert engine.rand(3).tolist() == a


@pytest.mark.parametrize("bad, error, message", [
    (lambda g: g.set_state(engine.zeros(3, dtype=engine.uint8)), RuntimeError, "expected the state of a 'cpu'"),
    (lambda g: g.set_state([1, 2]), TypeError, "the uint8 Tensor that get_state"),
    (lambda g: g.set_state(engine.zeros(46)), TypeError, "float32 Tensor"),
    (lambda g: g.manual_seed(1.5), TypeError, "manual_seed expects an integer"),
    (lambda g: engine.randn(2, generator=3), TypeError, "generator must be an engine.Generator"),
    (lambda g: engine.randn(2, device="cuda", generator=g), RuntimeError,
     "^randn: Expected a 'cuda' device type for generator but found 'cpu'$"),
    (lambda g: engine.nn.init.normal_(engine.zeros(2), generator="seed"), TypeError, "got str"),
    (lambda g: DataLoader(TensorDataset(engine.arange(3)), shuffle=True, generator=7), TypeError,
     "DataLoader: generator must be"),
    (lambda g: random_split(range(4), [2, 2], generator=1), TypeError, "random_split: generator must be"),
    (lambda g: engine.normal(0.0, 1.0), TypeError, "pass size="),
    (lambda g: engine.normal(engine.zeros(2), -1.0), RuntimeError, "normal expects std >= 0.0"),
    (lambda g: engine.normal(engine.zeros(2), 1.0, (2,)), TypeError, "size, dtype and device are taken only"),
    (lambda g: engine.poisson(engine.tensor([-1.0])), RuntimeError, "rate to be non-negative"),
    (lambda g: engine.randperm(-2), ValueError, "non-negative integer"),
    (lambda g: engine.multinomial(engine.ones(3), 0), RuntimeError, "num_samples must be a positive"),
])
def test_bad_generators_and_arguments_are_refused_in_one_line(bad, error, message):
    with pytest.raises(error, match=message) as info:
        bad(engine.Generator())
    assert "\n" not in str(info.value)


def test_a_state_of_another_device_is_refused():
    state = engine.Generator().get_state()
    state.array[0] = 1  # a CUDA generator's state starts with 1
    with pytest.raises(RuntimeError, match="of another device type"):
        engine.Generator().set_state(state)


def test_dataloader_shuffles_repeat_with_a_generator_whatever_the_global_draws():
    data = TensorDataset(engine.arange(12))

    def epochs(g, global_seed):
        engine.manual_seed(global_seed)
        loader = DataLoader(data, batch_size=5, shuffle=True, generator=g)
        return [[batch[0].tolist() for batch in loader] for _ in range(2)]

    first = epochs(engine.Generator().manual_seed(1), 0)
    assert first == epochs(engine.Generator().manual_seed(1), 99)
    assert first[0] != first[1], "each epoch draws a new order"
    assert sorted(i for batch in first[0] for i in batch) == list(range(12))


def test_random_split_and_samplers_repeat_with_a_generator_whatever_the_global_draws():
    def draws(global_seed):
        engine.manual_seed(global_seed)
        engine.rand(10)
        g = engine.Generator().manual_seed(8)
        split = [list(s.indices) for s in random_split(range(20), [0.5, 0.25, 0.25], generator=g)]
        return (split, list(RandomSampler(range(7), generator=g)), list(SubsetRandomSampler([3, 5, 9], g)),
                list(WeightedRandomSampler([1.0, 0.0, 2.0], 5, generator=g)))

    assert draws(0) == draws(1)


def test_fork_rng_puts_the_global_generator_back():
    engine.manual_seed(6)
    expected = engine.randn(4).tolist()
    engine.manual_seed(6)
    with engine.random.fork_rng():
        engine.randn(100)
        engine.manual_seed(1234)
        engine.rand(3)
    assert engine.randn(4).tolist() == expected and engine.initial_seed() == 6
    with engine.random.fork_rng(enabled=False):
        engine.randn(1)
    assert engine.randn(4).tolist() != expected


def test_samples_follow_their_distributions():
    g = engine.Generator().manual_seed(0)
    x = engine.normal(5.0, 2.0, (20000,), generator=g).numpy()
    assert abs(x.mean() - 5) < 0.1 and abs(x.std() - 2) < 0.1
    counts = np.bincount(engine.multinomial(engine.tensor([1.0, 0.0, 3.0]), 8000, True, generator=g).numpy(),
                         minlength=3)
    assert counts[1] == 0 and abs(counts[2] / counts[0] - 3) < 0.3
    rows = engine.multinomial(engine.tensor([[1.0, 0.0, 2.0, 5.0]] * 300), 3, generator=g).numpy()
    assert all(len(set(r)) == 3 and 1 not in r for r in rows)  # without replacement, never a zero weight
    assert abs(engine.poisson(engine.full((20000,), 4.0), generator=g).numpy().mean() - 4) < 0.1
    assert sorted(engine.randperm(50, generator=g).tolist()) == list(range(50))


def test_normal_broadcasts_and_keeps_the_tensor_dtype():
    out = engine.normal(engine.zeros(2, 1, dtype=engine.float64), engine.ones(3))
    assert tuple(out.shape) == (2, 3) and out.dtype == engine.float64
    assert engine.normal(0.0, 1.0, (2, 3)).dtype == engine.float32


@pytest.mark.gpu
def test_a_cuda_generator_draws_on_the_gpu_and_repeats():
    from tests.engine.oracle import cuda_or_skip

    cp = cuda_or_skip()
    g = engine.Generator(device="cuda")
    assert g.device == "cuda:0"
    g.manual_seed(0)
    engine.manual_seed(0)
    a = engine.randn(1000, device="cuda", generator=g)
    assert isinstance(a.array, cp.ndarray) and a.device == "cuda:0"
    # the global GPU generator did not move, and it is the same stream as g's
    assert engine.randn(1000, device="cuda").tolist() == a.tolist()
    state = g.get_state()
    b = engine.rand(7, device="cuda", generator=g).tolist()
    engine.rand(50, device="cuda")
    assert engine.rand(7, device="cuda", generator=g.set_state(state)).tolist() == b
    g.manual_seed(3)
    perm = engine.randperm(64, device="cuda", generator=g)
    assert isinstance(perm.array, cp.ndarray) and sorted(perm.tolist()) == list(range(64))
    rows = engine.multinomial(engine.tensor([[1.0, 0.0, 2.0, 5.0]] * 50, device="cuda"), 3, generator=g)
    assert rows.device == "cuda:0" and all(len(set(r)) == 3 and 1 not in r for r in rows.tolist())
    w = engine.zeros(16, 8, device="cuda")
    engine.nn.init.kaiming_uniform_(w, generator=g.manual_seed(5))
    first = w.tolist()
    engine.nn.init.kaiming_uniform_(w, generator=g.manual_seed(5))
    assert w.tolist() == first
    for draw in (lambda: engine.randn(2, generator=g), lambda: DataLoader(range(3), shuffle=True, generator=g)):
        with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
            draw()
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        engine.rand(2, device="cuda", generator=engine.Generator())
    engine.manual_seed(1)
    expected = engine.randn(3, device="cuda").tolist()
    engine.manual_seed(1)
    with engine.random.fork_rng():
        engine.randn(30, device="cuda")
    assert engine.randn(3, device="cuda").tolist() == expected


def test_a_cuda_generator_without_cupy_says_what_is_missing():
    from engine.backend import cupy_module

    if cupy_module() is not None:
        pytest.skip("CuPy is installed")
    with pytest.raises(RuntimeError, match=r"^device cuda:0 needs CuPy, which is not installed"):
        engine.Generator(device="cuda")


def test_seeding_the_gpu_from_a_script_runs_without_one():
    # a PyTorch script seeds both (torch.manual_seed(0); torch.cuda.manual_seed_all(0)): on a CPU-only
    # machine that must do nothing, as in torch
    engine.cuda.manual_seed(0)
    engine.cuda.manual_seed_all(0)
    if not engine.cuda.is_available():
        with pytest.raises(RuntimeError):
            engine.cuda.get_rng_state()


@pytest.mark.gpu
def test_the_gpu_generator_is_seeded_and_restored_through_engine_cuda():
    from tests.engine.oracle import cuda_or_skip

    cuda_or_skip()
    engine.cuda.manual_seed(7)
    a = engine.randn(5, device="cuda").tolist()
    engine.cuda.manual_seed_all(7)
    assert engine.randn(5, device="cuda").tolist() == a
    state = engine.cuda.get_rng_state()
    b = engine.rand(4, device="cuda").tolist()
    engine.cuda.set_rng_state(state)
    assert engine.rand(4, device="cuda").tolist() == b
