"""torch.utils.data beyond map-style datasets: IterableDataset with workers and get_worker_info, ChainDataset,
StackDataset, DistributedSampler, default_convert and the DataLoader's worker options; batches next to PyTorch's."""

import math
import warnings

import numpy as np
import pytest

import engine
from engine import data
from tests.engine.oracle import needs_torch, torch


def _api(lib):
    return lib.utils.data if lib is torch else lib.data


def _datasets(lib):
    """The stream datasets of PyTorch's IterableDataset documentation, written once for either library."""
    D = _api(lib)

    class Range(D.IterableDataset):
        """start..end-1, split between the workers as PyTorch's docs show."""

        def __init__(self, start, end):
            self.start, self.end = start, end

        def __iter__(self):
            info = D.get_worker_info()
            if info is None:
                return iter(range(self.start, self.end))
            per = math.ceil((self.end - self.start) / info.num_workers)
            lo = self.start + info.id * per
            return iter(range(lo, min(lo + per, self.end)))

    class Uneven(D.IterableDataset):
        """Worker w yields 3 * (w + 1) samples that say who made them (a generator: runs lazily)."""

        def __iter__(self):
            info = D.get_worker_info()
            w = 0 if info is None else info.id
            for i in range(3 * (w + 1)):
                yield {"worker": w, "x": np.array([i, w], dtype=np.float32)}

    class Who(D.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            info = D.get_worker_info()
            return i, -1 if info is None else info.id

    return D, Range, Uneven, Who


def _plain(batch):
    """Batches as plain data (tensors as (dtype, values)) to compare the two libraries' output."""
    if isinstance(batch, dict):
        return {k: _plain(v) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return [_plain(x) for x in batch]
    if hasattr(batch, "tolist"):
        return str(batch.dtype).split(".")[-1], batch.tolist()
    return batch


LOADERS = {
    "stream": lambda D, R, U, W: D.DataLoader(R(3, 17), batch_size=4),
    "stream drop_last": lambda D, R, U, W: D.DataLoader(R(3, 17), batch_size=4, drop_last=True),
    "stream, 2 workers": lambda D, R, U, W: D.DataLoader(R(3, 17), batch_size=3, num_workers=2),
    "stream, 3 workers, drop_last": lambda D, R, U, W: D.DataLoader(R(0, 20), batch_size=3, num_workers=3,
                                                                    drop_last=True),
    "stream unbatched, 2 workers": lambda D, R, U, W: D.DataLoader(R(0, 5), batch_size=None, num_workers=2),
    "uneven workers": lambda D, R, U, W: D.DataLoader(U(), batch_size=2, num_workers=3),
    "uneven unbatched": lambda D, R, U, W: D.DataLoader(U(), batch_size=None, num_workers=2),
    "ChainDataset": lambda D, R, U, W: D.DataLoader(D.ChainDataset([R(0, 3), R(10, 14)]), batch_size=2),
    "stream + stream": lambda D, R, U, W: D.DataLoader(R(0, 3) + R(10, 12), batch_size=2),
    "StackDataset": lambda D, R, U, W: D.DataLoader(D.StackDataset(list(range(5)), [i / 2 for i in range(5)]),
                                                    batch_size=2),
    "StackDataset kw, workers": lambda D, R, U, W: D.DataLoader(
        D.StackDataset(a=list(range(5)), b=[np.ones(2) * i for i in range(5)]), batch_size=3, num_workers=2),
    "map, workers": lambda D, R, U, W: D.DataLoader(W(), batch_size=2, num_workers=3, persistent_workers=True,
                                                    prefetch_factor=4, pin_memory=True, timeout=5),
    "map, workers, drop_last": lambda D, R, U, W: D.DataLoader(list(range(10)), batch_size=3, num_workers=2,
                                                               drop_last=True),
    "collate_fn": lambda D, R, U, W: D.DataLoader(list(range(7)), batch_size=3, collate_fn=sum),
    "unbatched numpy": lambda D, R, U, W: D.DataLoader([(np.arange(3), 1.5)] * 2, batch_size=None),
}


def _batches(lib, name, epochs=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the engine's note that its workers run in this process
        loader = LOADERS[name](*_datasets(lib))
        return [[_plain(b) for b in loader] for _ in range(epochs)]


@needs_torch
@pytest.mark.parametrize("name", LOADERS)
def test_loader_gives_torchs_batches_in_torchs_order(name):
    assert _batches(engine, name) == _batches(torch, name)


def test_workers_split_a_stream_without_duplicates_and_each_epoch_restarts():
    first, second = _batches(engine, "stream, 3 workers, drop_last", epochs=2)
    assert first == second
    values = [v for _, batch in first for v in batch]
    assert sorted(values) == sorted(set(values)) and len(first) == 6


def test_get_worker_info_is_none_outside_a_worker_and_in_the_training_loop():
    D, _, _, Who = _datasets(engine)
    assert data.get_worker_info() is None
    with pytest.warns(UserWarning, match="take turns in this process"):
        loader = D.DataLoader(Who(), batch_size=2, num_workers=3)
    for _ in loader:
        assert data.get_worker_info() is None  # the loop body runs as the main process, not a worker


def test_worker_init_fn_runs_for_each_worker_every_epoch_or_once_when_persistent():
    calls = []

    def init(worker_id):
        info = data.get_worker_info()
        calls.append((worker_id, info.id, info.num_workers))

    for persistent, expected in ((False, 2), (True, 1)):
        calls.clear()
        with pytest.warns(UserWarning):
            loader = data.DataLoader(list(range(4)), batch_size=2, num_workers=2, worker_init_fn=init,
                                     persistent_workers=persistent)
        for _ in range(2):
            list(loader)
        assert calls == [(0, 0, 2), (1, 1, 2)] * expected


@needs_torch
@pytest.mark.parametrize(("n", "replicas", "drop_last"), [(10, 3, False), (10, 3, True), (2, 4, False), (9, 3, True)])
def test_distributed_sampler_gives_each_rank_torchs_share(n, replicas, drop_last):
    for rank in range(replicas):
        ours = data.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_sampler_shuffles_alike_on_every_rank_and_anew_with_set_epoch():
    ranks = [data.DistributedSampler(range(12), 3, r, seed=5) for r in range(3)]
    first = [list(s) for s in ranks]
    assert sorted(i for share in first for i in share) == list(range(12))
    for s in ranks:
        s.set_epoch(1)
    second = [list(s) for s in ranks]
    assert sorted(i for share in second for i in share) == list(range(12)) and second != first
    loader = data.DataLoader(engine.arange(12), batch_size=2, sampler=ranks[0])
    assert [v for b in loader for v in b.tolist()] == second[0]


def test_stream_loader_len_follows_the_datasets_len_or_is_a_type_error():
    D, Range, _, _ = _datasets(engine)

    class Sized(Range):
        def __len__(self):
            return self.end - self.start

    assert len(D.DataLoader(Sized(0, 10), batch_size=4)) == 3
    assert len(D.DataLoader(Sized(0, 10), batch_size=4, drop_last=True)) == 2
    with pytest.raises(TypeError, match=r"object of type 'Range' has no len\(\)"):
        len(D.DataLoader(Range(0, 10)))


def test_default_convert_turns_numpy_into_tensors_and_leaves_the_rest():
    out = data.default_convert({"a": np.arange(3), "b": (np.float32(2.5), "text"), "c": [1, 2]})
    assert isinstance(out["a"], engine.Tensor) and out["a"].tolist() == [0, 1, 2]
    assert isinstance(out["b"], list) and float(out["b"][0]) == 2.5 and out["b"][1] == "text"
    assert out["c"] == [1, 2]


def test_stack_dataset_and_dataset_addition():
    stack = data.StackDataset(x=engine.arange(3), y=["a", "b", "c"])
    assert len(stack) == 3 and stack[1]["y"] == "b" and int(stack[1]["x"]) == 1
    both = data.TensorDataset(engine.arange(2)) + data.TensorDataset(engine.arange(3))
    assert isinstance(both, data.ConcatDataset) and len(both) == 5


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda D, R: D.DataLoader(R(0, 3), shuffle=True), ValueError,
     "IterableDataset: expected unspecified shuffle option, but got shuffle=True"),
    (lambda D, R: D.DataLoader(R(0, 3), sampler=[0, 1]), ValueError, "expected unspecified sampler option"),
    (lambda D, R: D.DataLoader(R(0, 3), batch_sampler=[[0]]), ValueError, "expected unspecified batch_sampler"),
    (lambda D, R: D.DataLoader(list(range(3)), timeout=-1), ValueError, "timeout option should be non-negative"),
    (lambda D, R: D.DataLoader(list(range(3)), prefetch_factor=2), ValueError,
     "prefetch_factor option could only be specified in multiprocessing"),
    (lambda D, R: D.DataLoader(list(range(3)), persistent_workers=True), ValueError,
     "persistent_workers option needs num_workers > 0"),
    (lambda D, R: D.DataLoader(list(range(3)), multiprocessing_context="fork"), ValueError,
     "multiprocessing_context can only be used with multi-process loading"),
    (lambda D, R: D.DataLoader(list(range(3)), num_workers=1, worker_init_fn=3), TypeError,
     "worker_init_fn must be callable"),
    (lambda D, R: D.StackDataset([1, 2], [1]), ValueError, "Size mismatch between datasets"),
    (lambda D, R: D.StackDataset(), ValueError, "At least one dataset should be passed"),
    (lambda D, R: list(D.ChainDataset([[1, 2]])), TypeError, "ChainDataset only supports IterableDataset"),
    (lambda D, R: R(0, 3)[0], TypeError, "is an IterableDataset: it has no indices"),
    (lambda D, R: D.DistributedSampler(range(4)), RuntimeError, "pass num_replicas and rank explicitly"),
    (lambda D, R: D.DistributedSampler(range(4), 2, 2), ValueError,
     r"Invalid rank 2, rank should be in the interval \[0, 1\]"),
])
def test_bad_input_gets_a_clear_error(make, error, message):
    D, Range, _, _ = _datasets(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message):
            make(D, Range)


def test_loader_takes_torchs_positional_order():
    # DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn, pin_memory, drop_last)
    loader = data.DataLoader(list(range(6)), 4, False, data.SequentialSampler(range(5)), None, 0, len, False, True)
    assert list(loader) == [4]
