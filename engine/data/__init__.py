"""Datasets and batching with PyTorch's names (`engine.data.DataLoader`), plus small built-in datasets."""

from engine.data.dataset import Dataset, TensorDataset
from engine.data.datasets import GLYPH_NAMES, char_corpus, circles, glyphs, moons, sine, two_spirals, xor
from engine.data.loader import DataLoader, default_collate

__all__ = ["GLYPH_NAMES", "DataLoader", "Dataset", "TensorDataset", "char_corpus", "circles",
           "default_collate", "glyphs", "moons", "sine", "two_spirals", "xor"]
