"""Samplers as torch.utils.data's: which indices a DataLoader takes, drawn reproducibly."""

import numpy as np
import pytest

import engine
from engine.data import (
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
])
def test_bad_sampler_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()
