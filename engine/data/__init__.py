"""Datasets and batching with PyTorch's names (`engine.data.DataLoader`), plus small built-in datasets."""

from engine.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from engine.data.datasets import GLYPH_NAMES, char_corpus, circles, glyphs, moons, sine, two_spirals, xor
from engine.data.loader import DataLoader, default_collate
from engine.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = ["GLYPH_NAMES", "BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
           "char_corpus", "circles", "default_collate", "glyphs", "moons", "random_split", "sine", "two_spirals", "xor"]
