"""Utilities with PyTorch's names: `utils.data` (datasets, samplers, DataLoader)."""
from . import data

__all__ = ["data"]
