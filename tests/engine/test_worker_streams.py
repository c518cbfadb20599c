"""DataLoader workers draw from their own random streams, as worker processes do: the usual seed_worker recipe gives
other augmentations each epoch, and the main process's numpy, Python and engine streams go on as if no worker ran."""

import random
import warnings

import numpy as np
import pytest

import engine
from engine.data import DataLoader, Dataset, get_worker_info

pytestmark = pytest.mark.filterwarnings("ignore:DataLoader loads in the main process")


class Noisy(Dataset):
    """Each sample its index plus numpy, Python and engine noise (an augmentation's draws)."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.float32(i + np.random.normal() + random.random() + engine.rand(1).item())


def seed_worker(worker_id):  # the recipe in torch's notes on reproducibility
    seed = engine.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def epochs(loader, n=3):
    return [next(iter(loader)).tolist() for _ in range(n)]


def test_the_seed_worker_recipe_augments_differently_each_epoch_and_leaves_the_main_streams_alone():
    np.random.seed(0)
    random.seed(0)
    engine.manual_seed(0)
    expected_numpy, expected_python = np.random.RandomState(0).rand(3), random.Random(0).random()
    loader = DataLoader(Noisy(), batch_size=4, num_workers=2, worker_init_fn=seed_worker)
    seen = epochs(loader)
    assert len({tuple(batch) for batch in seen}) == 3  # the same three times before
    # the workers' draws left the main process's streams where they were (only the loader's base seed was drawn)
    np.testing.assert_array_equal(np.random.rand(3), expected_numpy)
    assert random.random() == expected_python


def test_a_worker_sees_its_own_seed_and_persistent_workers_keep_their_streams():
    seeds = []

    def remember(worker_id):
        seeds.append((worker_id, engine.initial_seed(), get_worker_info().seed))

    engine.manual_seed(1)
    loader = DataLoader(Noisy(), batch_size=2, num_workers=2, worker_init_fn=remember, persistent_workers=True)
    first, second = epochs(loader, 2)
    assert [(w, s) for w, s, _ in seeds] == [(w, info) for w, _, info in seeds] and len(seeds) == 2
    assert seeds[1][1] == seeds[0][1] + 1  # base + worker id, as torch numbers them
    assert first != second  # persistent workers go on drawing where they were


def test_runs_with_the_same_seed_load_the_same_batches():
    def run():
        engine.manual_seed(7)
        np.random.seed(7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return epochs(DataLoader(Noisy(), batch_size=4, num_workers=2, worker_init_fn=seed_worker), 2)

    assert run() == run()
