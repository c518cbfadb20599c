"""Samplers as torch.utils.data's: which indices a DataLoader takes, drawn reproducibly."""

import numpy as np
import pytest

import engine
from engine.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)
from tests.engine.oracle import needs_torch, torch


def dataset(n: int = 6) -> TensorDataset:
    return TensorDataset(engine.arange(n).float(), engine.arange(n))


def labels(loader) -> list[int]:
    return [int(v) for _, y in loader for v in y.tolist()]


def test_weighted_sampler_draws_in_proportion_and_never_a_zero_weight():
    # class rebalancing: a rare class drawn as often as a common one
    sampler = WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 4000, generator=np.random.default_rng(0))
    drawn = np.bincount(list(sampler), minlength=4)
    assert drawn[0] == drawn[2] == 0 and len(sampler) == 4000
    assert drawn[3] / drawn[1] == pytest.approx(3.0, rel=0.1)
    loader = DataLoader(dataset(4), batch_size=3, sampler=WeightedRandomSampler([0, 0, 1, 0], 7))
    assert len(loader) == 3 and labels(loader) == [2] * 7


def test_subset_sampler_is_a_permutation_of_its_indices_each_epoch():
    sampler = SubsetRandomSampler([1, 3, 5], generator=np.random.default_rng(1))
    epochs = [list(sampler) for _ in range(5)]
    assert all(sorted(e) == [1, 3, 5] for e in epochs) and len({tuple(e) for e in epochs}) > 1
    assert sorted(labels(DataLoader(dataset(), batch_size=2, sampler=sampler))) == [1, 3, 5]


@needs_torch
def test_lengths_and_orders_match_torch():
    for ours, theirs in ((SequentialSampler(range(5)), torch.utils.data.SequentialSampler(range(5))),
                         (RandomSampler(range(5)), torch.utils.data.RandomSampler(range(5))),
                         (RandomSampler(range(5), num_samples=12), torch.utils.data.RandomSampler(range(5),
                                                                                                num_samples=12)),
                         (RandomSampler(range(5), replacement=True, num_samples=3),
                          torch.utils.data.RandomSampler(range(5), replacement=True, num_samples=3))):
        assert len(ours) == len(theirs) and len(list(ours)) == len(list(theirs))
    assert list(SequentialSampler(range(5))) == list(torch.utils.data.SequentialSampler(range(5)))
    # without replacement every index comes once per pass, also over several passes
    assert np.bincount(list(RandomSampler(range(5), num_samples=10))).tolist() == [2] * 5


def test_samplers_follow_the_engine_seed():
    engine.manual_seed(3)
    first = list(RandomSampler(range(8)))
    engine.manual_seed(3)
    assert list(RandomSampler(range(8))) == first and all(type(i) is int for i in first)


@pytest.mark.parametrize("make, error, message", [
    (lambda: WeightedRandomSampler([1.0, -1.0], 2), ValueError, "non-negative"),
    (lambda: WeightedRandomSampler([0.0, 0.0], 2), ValueError, "not all zero"),
    (lambda: WeightedRandomSampler([1.0, float("nan")], 2), ValueError, "finite"),
    (lambda: WeightedRandomSampler([1.0, 1.0], 0), ValueError, "num_samples=0"),
    (lambda: WeightedRandomSampler([1.0, 0.0], 2, replacement=False), ValueError, "without replacement"),
    (lambda: RandomSampler(range(3), generator=42), TypeError, "numpy.random.Generator"),
    (lambda: DataLoader(dataset(), sampler=SequentialSampler(range(6)), shuffle=True), ValueError,
     "mutually exclusive with shuffle"),
    (lambda: DataLoader(dataset(), sampler=3), TypeError, "iterable of indices"),
    (lambda: DataLoader(dataset(), batch_size=2, batch_sampler=[[0, 1]]), ValueError,
     "batch_sampler option is mutually exclusive"),
    (lambda: DataLoader(dataset(), batch_sampler=5), TypeError, "iterable of lists of indices"),
    (lambda: BatchSampler(range(3), 0, False), ValueError, "batch_size=0"),
    (lambda: BatchSampler(range(3), 2, "yes"), ValueError, "drop_last should be a boolean"),
])
def test_bad_sampler_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


@needs_torch
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_groups_as_torch(drop_last):
    ours = BatchSampler(SequentialSampler(range(7)), 3, drop_last)
    theirs = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(7)), 3, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_a_loader_exposes_its_sampler_and_batch_sampler_as_torch_does():
    plain, shuffled, unbatched = DataLoader(dataset(), 4), DataLoader(dataset(), 4, shuffle=True), \
        DataLoader(dataset(), batch_size=None)
    assert type(plain.sampler) is SequentialSampler and type(shuffled.sampler) is RandomSampler
    assert type(plain.batch_sampler) is BatchSampler and plain.batch_sampler.batch_size == 4
    assert unbatched.batch_sampler is None and len(unbatched) == 6
    assert [list(b) for b in plain.batch_sampler] == [[0, 1, 2, 3], [4, 5]]


def test_a_batch_sampler_given_to_the_loader_decides_the_batches():
    # e.g. batches of similar lengths for a sequence model: any iterable of index lists will do
    buckets = [[5, 0], [1, 4, 2], [3]]
    loader = DataLoader(dataset(), batch_sampler=buckets)
    assert loader.batch_size is None and len(loader) == 3
    assert [y.tolist() for _, y in loader] == buckets
    loader = DataLoader(dataset(), batch_sampler=BatchSampler(RandomSampler(range(6)), 4, drop_last=True))
    assert [len(y) for _, y in loader] == [4]


def test_a_sampler_that_defines_no_order_says_so():
    class Broken(engine.data.Sampler):
        def __len__(self):
            return 3

    with pytest.raises(NotImplementedError, match="Broken must define __iter__"):
        list(DataLoader(dataset(), batch_size=2, sampler=Broken()))


def test_a_subclass_that_iterates_its_own_way_is_iterated_by_the_loader():
    class Reversed(SequentialSampler):  # a person's sampler on top of one of the engine's own
        def __iter__(self):
            return iter(reversed(range(len(self.data_source))))

    loader = DataLoader(list(range(5)), batch_size=2, sampler=Reversed(range(5)))
    assert [b.tolist() for b in loader] == [[4, 3], [2, 1], [0]]


def test_a_subclass_may_keep_its_own_epoch_counter_as_torch_samplers_do():
    class Epochs(RandomSampler):
        def __init__(self, data) -> None:
            super().__init__(data)
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

    sampler = Epochs(range(6))
    sampler.set_epoch(3)
    batches = [b.tolist() for b in DataLoader(list(range(6)), batch_size=6, sampler=sampler)]
    assert sorted(batches[0]) == list(range(6)) and sampler.epoch == 3


def test_a_sequential_sampler_gives_its_first_index_without_listing_them_all():
    class Huge:
        def __len__(self) -> int:
            return 10 ** 12  # listing 0..n-1 first would never finish

    assert next(iter(SequentialSampler(Huge()))) == 0
