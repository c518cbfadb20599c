"""engine.data: datasets, batching, reproducible shuffling, collation and the built-in datasets."""

from collections import namedtuple

import numpy as np
import pytest

import engine
from engine.data import (
    GLYPH_NAMES,
    DataLoader,
    Dataset,
    TensorDataset,
    char_corpus,
    circles,
    default_collate,
    glyphs,
    moons,
    sine,
    two_spirals,
    xor,
)


def numbered(n=10):
    x = engine.tensor(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    y = engine.arange(n)
    return TensorDataset(x, y)


def labels_of(loader):
    return [int(v) for _, y in loader for v in y.tolist()]


# ---- TensorDataset and batching ------------------------------------------------------------------
def test_tensor_dataset_gives_rows():
    ds = numbered(5)
    assert len(ds) == 5
    x, y = ds[3]
    assert x.tolist() == [6.0, 7.0] and y.item() == 3


def test_tensor_dataset_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match=r"Size mismatch between tensors.*\[3, 4\]"):
        TensorDataset(engine.zeros(3, 2), engine.zeros(4))
    with pytest.raises(TypeError, match="argument 1 is a list"):
        TensorDataset(engine.zeros(3), [1, 2, 3])


def test_batches_in_order_with_a_short_last_batch():
    loader = DataLoader(numbered(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [tuple(x.shape) for x, _ in batches] == [(4, 2), (4, 2), (2, 2)]
    assert batches[0][1].dtype == engine.int64 and batches[0][0].dtype == engine.float32
    assert labels_of(loader) == list(range(10))


def test_drop_last_drops_the_short_batch():
    loader = DataLoader(numbered(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and labels_of(loader) == list(range(8))


def test_shuffle_covers_every_sample_once_in_a_new_order_each_epoch():
    loader = DataLoader(numbered(50), batch_size=8, shuffle=True)
    first, second = labels_of(loader), labels_of(loader)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second and first != list(range(50))


def test_shuffle_is_reproducible_with_manual_seed_or_a_seed():
    def epochs(**kwargs):
        loader = DataLoader(numbered(30), batch_size=7, shuffle=True, **kwargs)
        return labels_of(loader), labels_of(loader)

    engine.manual_seed(3)
    a = epochs()
    engine.manual_seed(3)
    assert epochs() == a
    engine.manual_seed(4)
    assert epochs() != a
    assert epochs(seed=11) == epochs(seed=11) != epochs(seed=12)
    assert epochs(generator=np.random.default_rng(5)) == epochs(seed=5)


def test_gradient_carrying_tensors_are_indexed_with_recorded_ops():
    w = engine.ones(6, 2, requires_grad=True)
    (batch,) = next(iter(DataLoader(TensorDataset(w), batch_size=3)))
    batch.sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0]] * 3 + [[0.0, 0.0]] * 3


class Records(Dataset):
    """Samples of mixed types, to exercise default_collate."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"image": np.full((2, 2), i, dtype=np.float32), "label": i, "weight": i / 2, "name": f"s{i}"}


def test_default_collate_stacks_arrays_numbers_and_dicts():
    batch = next(iter(DataLoader(Records(), batch_size=4)))
    assert batch["image"].shape == (4, 2, 2) and batch["image"].dtype == engine.float32
    assert batch["label"].tolist() == [0, 1, 2, 3] and batch["label"].dtype == engine.int64
    assert batch["weight"].dtype == engine.float64  # Python floats become float64, as in PyTorch
    assert batch["name"] == ["s0", "s1", "s2", "s3"]


def test_default_collate_keeps_namedtuples_and_makes_plain_tuples_lists_as_torch():
    Pair = namedtuple("Pair", "x y")
    out = default_collate([Pair(engine.tensor([1.0]), 1), Pair(engine.tensor([2.0]), 2)])
    assert isinstance(out, Pair) and out.x.tolist() == [[1.0], [2.0]] and out.y.tolist() == [1, 2]
    out = default_collate([(True, 1.5), (False, 2.5)])
    assert isinstance(out, list) and out[0].dtype == engine.bool
    # strings stay as the batch gave them: a column of tuples is a tuple
    assert default_collate([("a", 1), ("b", 2)])[0] == ("a", "b") and default_collate(["a", "b"]) == ["a", "b"]


def test_default_collate_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"different shapes \(2,\) and \(3,\)"):
        default_collate([engine.zeros(2), engine.zeros(3)])
    with pytest.raises(ValueError, match="equal size"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])


def test_custom_collate_fn_and_unbatched_loading():
    loader = DataLoader(numbered(5), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]
    unbatched = list(DataLoader(numbered(3), batch_size=None))
    assert len(unbatched) == 3 and unbatched[2][1].item() == 2


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(batch_size=0), ValueError, "positive integer value, but got batch_size=0"),
    (dict(batch_size=2.5), ValueError, "positive integer value"),
    (dict(batch_size=None, drop_last=True), ValueError, "mutually exclusive"),
    (dict(num_workers=-1), ValueError, "non-negative"),
    (dict(seed=1, generator=np.random.default_rng(1)), ValueError, "either generator or seed"),
])
def test_loader_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(numbered(4), **kwargs)


def test_loader_refuses_a_dataset_without_len():
    with pytest.raises(TypeError, match="map-style dataset"):
        DataLoader(iter(range(3)))


def test_empty_dataset_yields_nothing():
    loader = DataLoader(TensorDataset(engine.zeros(0, 3)), batch_size=4, shuffle=True)
    assert len(loader) == 0 and list(loader) == []


# ---- built-in datasets -----------------------------------------------------------------------
TOYS = [two_spirals, moons, circles, xor]


@pytest.mark.parametrize("make", TOYS)
def test_toy_datasets_have_balanced_labels_and_are_seeded(make):
    x, y = make(101, noise=0.1, seed=1)
    assert x.shape == (101, 2) and x.dtype == engine.float32 and y.dtype == engine.int64
    counts = np.bincount(y.numpy())
    assert len(counts) == 2 and abs(counts[0] - counts[1]) <= 30
    x2, y2 = make(101, noise=0.1, seed=1)
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    np.testing.assert_array_equal(y.numpy(), y2.numpy())
    assert not np.array_equal(make(101, noise=0.1, seed=2)[0].numpy(), x.numpy())
    assert y.tolist() != sorted(y.tolist())  # shuffled: a loader without shuffle still sees both classes


def test_noise_free_shapes_are_exact():
    x, y = circles(200, noise=0.0, factor=0.3)
    radius = np.linalg.norm(x.numpy(), axis=1)
    np.testing.assert_allclose(radius, np.where(y.numpy() == 0, 1.0, 0.3), rtol=1e-5)
    x, y = xor(200, noise=0.0)
    np.testing.assert_array_equal((x.numpy()[:, 0] > 0) != (x.numpy()[:, 1] > 0), y.numpy() == 1)
    x, y = moons(200, noise=0.0)
    upper = x.numpy()[y.numpy() == 0]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, rtol=1e-5)
    x, y = sine(50, noise=0.0)
    assert x.shape == y.shape == (50, 1) and y.dtype == engine.float32
    np.testing.assert_allclose(y.numpy(), np.sin(x.numpy()), atol=1e-6)


def test_two_spirals_arms_do_not_overlap_without_noise():
    x, y = two_spirals(400, noise=0.0)
    pts = x.numpy()
    # the nearest neighbour of almost every point is on its own arm
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    same = y.numpy()[d.argmin(axis=1)] == y.numpy()
    assert same.mean() > 0.97


def test_glyph_images_are_learnable_classes():
    x, y = glyphs(600, noise=0.1, seed=0)
    assert x.shape == (600, 1, 16, 16) and x.dtype == engine.float32 and y.dtype == engine.int64
    assert float(x.numpy().min()) >= 0.0 and float(x.numpy().max()) <= 1.0
    assert np.bincount(y.numpy()).tolist() == [60] * len(GLYPH_NAMES)
    # class means from one sample classify a fresh sample well: the classes differ in a learnable way
    flat, labels = x.numpy().reshape(600, -1), y.numpy()
    centroids = np.stack([flat[labels == c].mean(0) for c in range(10)])
    xt, yt = glyphs(300, noise=0.1, seed=1)
    guess = np.linalg.norm(xt.numpy().reshape(300, 1, -1) - centroids[None], axis=-1).argmin(1)
    assert (guess == yt.numpy()).mean() > 0.7
    # and jitter makes drawings of one class differ
    same_class = flat[labels == 0]
    assert np.abs(same_class[0] - same_class[1]).max() > 0.5


@pytest.mark.parametrize(("call", "message"), [
    (lambda: two_spirals(0), "n must be a positive integer"),
    (lambda: moons(10, noise=-1), "noise must be a number >= 0"),
    (lambda: circles(10, factor=1.5), "factor must be between 0 and 1"),
    (lambda: glyphs(10, size=4), "size must be an integer >= 8"),
])
def test_dataset_argument_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_toy_dataset_trains_through_a_loader():
    x, y = moons(64, noise=0.05)
    batches = list(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0))
    assert len(batches) == 4 and sum(len(b[1]) for b in batches) == 64


# ---- text --------------------------------------------------------------------------------------
def test_char_corpus_round_trips_and_is_a_real_text():
    text, vocab, encode, decode = char_corpus()
    assert 20_000 <= len(text.encode("utf-8")) <= 40_000
    assert vocab == sorted(set(text)) and " " in vocab and "e" in vocab
    ids = encode(text)
    assert ids.dtype == engine.int64 and ids.shape == (len(text),)
    assert decode(ids) == text and decode([vocab.index("a"), vocab.index("b")]) == "ab"
    # prose, not noise: the most common letter is e, and words repeat
    letters = [c for c in text.lower() if c.isalpha()]
    assert max(set(letters), key=letters.count) == "e"
    assert text.count(" the ") > 100


def test_char_corpus_errors():
    _, vocab, encode, decode = char_corpus()
    with pytest.raises(ValueError, match="not in the corpus vocabulary"):
        encode("\u00e9")
    with pytest.raises(ValueError, match="is not an index"):
        decode([len(vocab)])


def test_char_corpus_reads_another_file(tmp_path):
    (tmp_path / "t.txt").write_text("abba", encoding="utf-8")
    text, vocab, encode, _ = char_corpus(tmp_path / "t.txt")
    assert text == "abba" and vocab == ["a", "b"] and encode("ab").tolist() == [0, 1]


def test_num_workers_loads_in_the_main_process_with_a_warning():
    # PyTorch scripts pass num_workers=4 for speed: they run, told once where the batches come from
    with pytest.warns(UserWarning, match="loads in the main process here: its num_workers=4 workers take turns"):
        loader = DataLoader(numbered(4), batch_size=2, num_workers=4)
    assert labels_of(loader) == [0, 1, 2, 3]
