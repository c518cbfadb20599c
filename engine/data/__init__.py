"""Datasets and batching with PyTorch's names (`engine.data.DataLoader`), plus small built-in datasets."""

from engine.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from engine.data.datasets import GLYPH_NAMES, char_corpus, circles, glyphs, moons, sine, two_spirals, xor
from engine.data.loader import DataLoader, default_collate, default_convert
from engine.data.sampler import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from engine.data.worker import WorkerInfo, get_worker_info

__all__ = ["GLYPH_NAMES", "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
           "DistributedSampler", "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "StackDataset",
           "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "char_corpus",
           "circles", "default_collate", "default_convert", "get_worker_info", "glyphs", "moons", "random_split",
           "sine", "two_spirals", "xor"]
