"""The CPU generator draws torch's numbers from the same seed: a seeded script initialises, shuffles, drops out and
samples as it does under PyTorch, so a port gives torch's numbers without copying weights over."""

import numpy as np
import pytest

import engine
import engine.nn as enn
import engine.nn.functional as EF
from engine.random_cpu import CPUStream
from tests.engine.oracle import needs_torch, torch


def test_the_stream_is_the_reference_mersenne_twister():
    # C++'s std::mt19937 default-seeded (5489): its 10000th number is 4123659995, as the standard requires
    words = CPUStream(5489).words(10000)
    assert int(words[-1]) == 4123659995
    # a seed past 32 bits keeps its low 32, as torch's generator does
    assert CPUStream(2 ** 40 + 7).words(3).tolist() == CPUStream(7).words(3).tolist()


def same(make_engine, make_torch, seed: int = 0) -> None:
    """The two draw the same numbers from `seed` (an array, or a list of them), and leave their generators at
    the same place."""
    engine.manual_seed(seed)
    torch.manual_seed(seed)
    ours, theirs = make_engine(), make_torch()
    pairs = zip(ours, theirs, strict=True) if isinstance(ours, list) else [(ours, theirs)]
    for a, b in pairs:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert engine.rand(3).tolist() == torch.rand(3).tolist()  # the streams are still in step


@needs_torch
@pytest.mark.parametrize("n", [1, 3, 15, 16, 17, 40, 1000])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rand_and_randn_match_torch(n, dtype):
    same(lambda: engine.rand(n, dtype=getattr(engine, dtype)).numpy(),
         lambda: torch.rand(n, dtype=getattr(torch, dtype)).numpy())
    # randn: a Box-Muller pair per two samples below 16 elements, blocks of 16 from there
    same(lambda: engine.randn(n, dtype=getattr(engine, dtype)).numpy(),
         lambda: torch.randn(n, dtype=getattr(torch, dtype)).numpy())


@needs_torch
def test_a_scalar_normal_pair_carries_over_to_the_next_draw():
    same(lambda: [engine.randn(3).numpy(), engine.randn(1).numpy(), engine.randn(20).numpy()],
         lambda: [torch.randn(3).numpy(), torch.randn(1).numpy(), torch.randn(20).numpy()])


@needs_torch
def test_integers_and_permutations_match_torch():
    same(lambda: engine.randint(0, 10, (50,)).numpy(), lambda: torch.randint(0, 10, (50,)).numpy())
    same(lambda: engine.randint(-5, 2 ** 40, (9,)).numpy(), lambda: torch.randint(-5, 2 ** 40, (9,)).numpy())
    same(lambda: engine.randperm(1000).numpy(), lambda: torch.randperm(1000).numpy())
    same(lambda: engine.randperm(10, generator=engine.Generator().manual_seed(42)).numpy(),
         lambda: torch.randperm(10, generator=torch.Generator().manual_seed(42)).numpy())
    same(lambda: engine.empty(9).random_(0, 10).numpy(), lambda: torch.empty(9).random_(0, 10).numpy())


@needs_torch
@pytest.mark.parametrize("n", [5, 40])
def test_tensor_samplers_match_torch(n):
    for method, args in (("uniform_", (-0.37, 0.71)), ("normal_", (0.5, 2.0)), ("exponential_", (2.0,)),
                         ("cauchy_", (1.0, 2.0)), ("geometric_", (0.3,)), ("log_normal_", (1.0, 0.5)),
                         ("bernoulli_", (0.3,))):
        for dtype in ("float32", "float64"):
            def draw(lib, method=method, args=args, dtype=dtype):
                return getattr(lib.empty(n, dtype=getattr(lib, dtype)), method)(*args).numpy()

            same(lambda: draw(engine), lambda: draw(torch))
    same(lambda: engine.bernoulli(engine.full((n,), 0.3)).numpy(),
         lambda: torch.bernoulli(torch.full((n,), 0.3)).numpy())
    same(lambda: engine.normal(2.0, 3.0, (n,)).numpy(), lambda: torch.normal(2.0, 3.0, (n,)).numpy())
    same(lambda: engine.normal(engine.ones(n), engine.full((n,), 2.0)).numpy(),
         lambda: torch.normal(torch.ones(n), torch.full((n,), 2.0)).numpy())


@needs_torch
def test_dropout_masks_match_torch():
    tf = torch.nn.functional
    same(lambda: EF.dropout(engine.ones(200), 0.3).numpy(), lambda: tf.dropout(torch.ones(200), 0.3).numpy())
    same(lambda: EF.dropout2d(engine.ones(4, 5, 3, 3), 0.5).numpy(),
         lambda: tf.dropout2d(torch.ones(4, 5, 3, 3), 0.5).numpy())
    # p = 1 zeroes everything and draws nothing
    same(lambda: EF.dropout(engine.ones(10), 1.0).numpy(), lambda: tf.dropout(torch.ones(10), 1.0).numpy())


def parameters(module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in module.parameters()])


@needs_torch
@pytest.mark.parametrize("make", [
    lambda nn: nn.Linear(20, 30), lambda nn: nn.Conv2d(3, 8, 3), lambda nn: nn.ConvTranspose2d(3, 4, 3),
    lambda nn: nn.Embedding(50, 7), lambda nn: nn.LSTM(5, 7, 2), lambda nn: nn.GRU(5, 7),
    lambda nn: nn.MultiheadAttention(8, 2), lambda nn: nn.TransformerEncoderLayer(8, 2, 16),
    lambda nn: nn.Bilinear(3, 4, 5),
    lambda nn: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
], ids=["Linear", "Conv2d", "ConvTranspose2d", "Embedding", "LSTM", "GRU", "MultiheadAttention",
        "TransformerEncoderLayer", "Bilinear", "Sequential"])
def test_a_seeded_model_starts_from_torchs_weights(make):
    same(lambda: parameters(make(enn)), lambda: parameters(make(torch.nn)))


@needs_torch
@pytest.mark.parametrize("init, kwargs", [
    ("xavier_uniform_", {}), ("xavier_normal_", {}), ("kaiming_uniform_", {}), ("kaiming_normal_", {}),
    ("trunc_normal_", {"std": 0.02}),                  # most of the mass inside: normal draws, redrawn
    ("trunc_normal_", {"std": 3.0, "a": -0.5, "b": 0.5}),  # little of it: uniform proposals, accepted by ratio
    ("normal_", {"std": 0.02}), ("uniform_", {"a": -0.1, "b": 0.1}), ("sparse_", {"sparsity": 0.5}),
])
def test_init_functions_match_torch(init, kwargs):
    if init == "trunc_normal_" and tuple(map(int, torch.__version__.split(".")[:2])) < (2, 13):
        pytest.skip("torch before 2.13 truncates through the inverse normal CDF; the engine draws as 2.13 does")
    same(lambda: getattr(enn.init, init)(engine.empty(30, 40), **kwargs).numpy(),
         lambda: getattr(torch.nn.init, init)(torch.empty(30, 40), **kwargs).numpy())


@needs_torch
def test_a_shuffling_loader_and_a_split_take_torchs_order():
    from engine.utils import data as edata
    from torch.utils import data as tdata

    def epochs(data, lib, **kwargs):
        loader = data.DataLoader(data.TensorDataset(lib.arange(50)), batch_size=8, shuffle=True, **kwargs)
        return [batch[0].tolist() for _ in range(2) for batch in loader]

    same(lambda: epochs(edata, engine), lambda: epochs(tdata, torch))
    same(lambda: epochs(edata, engine, drop_last=True), lambda: epochs(tdata, torch, drop_last=True))
    same(lambda: epochs(edata, engine, generator=engine.Generator().manual_seed(5)),
         lambda: epochs(tdata, torch, generator=torch.Generator().manual_seed(5)))
    same(lambda: [list(s.indices) for s in edata.random_split(range(10), [0.7, 0.3])],
         lambda: [list(s.indices) for s in tdata.random_split(range(10), [0.7, 0.3])])
    same(lambda: list(edata.RandomSampler(range(7), num_samples=10)),
         lambda: list(tdata.RandomSampler(range(7), num_samples=10)))
    same(lambda: list(edata.RandomSampler(range(7), replacement=True, num_samples=40)),
         lambda: list(tdata.RandomSampler(range(7), replacement=True, num_samples=40)))
    w = [0.1, 0.5, 0.2, 0.2]
    same(lambda: list(edata.WeightedRandomSampler(w, 10)), lambda: list(tdata.WeightedRandomSampler(w, 10)))


def test_a_saved_state_restores_the_stream_and_its_kept_normal_sample():
    engine.manual_seed(1)
    engine.randn(1)  # the pair's second sample is kept for the next draw
    state = engine.get_rng_state()
    first = [engine.randn(1).item(), engine.rand(2).tolist()]
    engine.manual_seed(99)
    engine.set_rng_state(state)
    assert [engine.randn(1).item(), engine.rand(2).tolist()] == first
    with pytest.raises(RuntimeError, match="set_state: expected the state of a 'cpu' generator"):
        engine.set_rng_state(engine.zeros(10, dtype=engine.uint8))
    with engine.random.fork_rng():
        engine.rand(5)
    assert engine.rand(1).item() != first[1][0]  # fork_rng put the stream back where it was: on, not repeated


@needs_torch
@pytest.mark.parametrize("name", ["normal", "categorical", "categorical_one", "bernoulli", "uniform",
                                  "exponential", "cauchy", "mvn", "one_hot", "geometric", "gamma", "beta",
                                  "beta64", "dirichlet", "student", "poisson", "poisson_large"])
def test_distribution_samples_match_torch(name):
    def draw(lib):
        d = lib.distributions
        make = {
            "normal": lambda: d.Normal(lib.zeros(3), lib.ones(3)).rsample((4,)),
            "categorical": lambda: d.Categorical(logits=lib.linspace(-1, 1, 10).reshape(2, 5)).sample((3,)),
            "categorical_one": lambda: d.Categorical(probs=lib.tensor([0.2, 0.3, 0.5])).sample(),
            "bernoulli": lambda: d.Bernoulli(probs=lib.full((10,), 0.3)).sample(),
            "uniform": lambda: d.Uniform(-1.0, 2.0).sample((10,)),
            "exponential": lambda: d.Exponential(2.0).rsample((10,)),
            "cauchy": lambda: d.Cauchy(0.0, 1.0).rsample((5,)),
            "mvn": lambda: d.MultivariateNormal(lib.zeros(3), lib.eye(3)).sample((4,)),
            "one_hot": lambda: d.OneHotCategorical(logits=lib.zeros(4)).sample((3,)),
            "geometric": lambda: d.Geometric(probs=lib.tensor(0.3)).sample((5,)),
            # torch's own Gamma sampler (Marsaglia-Tsang), alpha below 1 boosted; Beta through a Dirichlet (mixup)
            "gamma": lambda: d.Gamma(lib.tensor([0.3, 2.0, 7.5]), 1.5).rsample((4,)),
            "beta": lambda: d.Beta(0.4, 0.4).sample((5,)),
            "beta64": lambda: d.Beta(lib.tensor(0.4, dtype=lib.float64), lib.tensor(2.0, dtype=lib.float64)).sample(),
            "dirichlet": lambda: d.Dirichlet(lib.tensor([0.5, 1.0, 3.0])).sample((4,)),
            "student": lambda: d.StudentT(4.0).sample((5,)),
            "poisson": lambda: d.Poisson(lib.tensor([0.5, 3.0])).sample((4,)),
            "poisson_large": lambda: lib.poisson(lib.tensor([12.0, 30.0, 250.0])),
        }
        return make[name]().numpy()

    same(lambda: draw(engine), lambda: draw(torch))


@needs_torch
def test_random_activations_and_multinomial_draw_as_torch():
    same(lambda: EF.rrelu(engine.linspace(-1, 1, 41), training=True).numpy(),
         lambda: torch.nn.functional.rrelu(torch.linspace(-1, 1, 41), training=True).numpy())
    for n, replacement in ((1, True), (1, False), (5, True), (5, False)):
        same(lambda n=n, r=replacement: engine.multinomial(engine.rand(20, 30), n, r).numpy(),
             lambda n=n, r=replacement: torch.multinomial(torch.rand(20, 30), n, r).numpy())
    # gumbel_softmax: torch's exponential draws; the float32 log may differ in the last place
    engine.manual_seed(0)
    torch.manual_seed(0)
    np.testing.assert_allclose(EF.gumbel_softmax(engine.zeros(2, 4)).numpy(),
                               torch.nn.functional.gumbel_softmax(torch.zeros(2, 4)).numpy(), rtol=1e-6)
    assert engine.rand(2).tolist() == torch.rand(2).tolist()


@needs_torch
def test_a_transposed_tensor_gets_its_draws_in_memory_order_as_torch_fills_it():
    # torch fills a tensor (and the empty_like of one) in memory order: a batch-first Transformer layer's dropout
    # acts on the transposed attention output, and drew other masks
    tf = torch.nn.functional
    for make_e, make_t in (
            (lambda: EF.dropout(engine.ones(4, 2).t(), 0.5), lambda: tf.dropout(torch.ones(4, 2).t(), 0.5)),
            (lambda: EF.dropout(engine.ones(3, 4, 5).permute(1, 0, 2), 0.5),
             lambda: tf.dropout(torch.ones(3, 4, 5).permute(1, 0, 2), 0.5)),
            (lambda: engine.rand_like(engine.ones(4, 2).t()), lambda: torch.rand_like(torch.ones(4, 2).t())),
            # a tensor that is not C-contiguous draws its normals a pair at a time, whatever its size
            (lambda: engine.randn_like(engine.ones(20, 2).t()), lambda: torch.randn_like(torch.ones(20, 2).t())),
            (lambda: engine.ones(20, 3).t().normal_(), lambda: torch.ones(20, 3).t().normal_()),
            (lambda: engine.zeros(20, 6)[:, :4].normal_(), lambda: torch.zeros(20, 6)[:, :4].normal_()),
            (lambda: engine.ones(20, 3).t().bernoulli_(0.3), lambda: torch.ones(20, 3).t().bernoulli_(0.3))):
        same(lambda f=make_e: f().numpy(), lambda f=make_t: f().numpy())


@needs_torch
@pytest.mark.parametrize("batch_first", [True, False])
def test_a_transformer_layer_with_dropout_trains_on_torchs_masks(batch_first):
    def run(lib):
        layer = lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=batch_first)
        x = lib.randn(3, 5, 8)
        attention = layer.self_attn(x, x, x, need_weights=False)[0]
        return [layer(x).detach().numpy(), np.array(attention.is_contiguous())]

    engine.manual_seed(0)
    torch.manual_seed(0)
    (ours, our_layout), (theirs, their_layout) = run(engine), run(torch)
    assert our_layout == their_layout  # laid out as torch's: (L, N, E), a batch-first result its transpose
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # the same masks: matmul rounding only
