"""The one random generator of the package, so that `manual_seed` makes every draw reproducible."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator behind every random draw in tinygrad_cnn (factories, init, dropout, shuffling);
    returns it, as PyTorch's returns its generator."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    """The package's current generator; call it at draw time so a later `manual_seed` takes effect."""
    return _generator


def get_rng_state() -> dict:
    """The generator's state, for checkpoints (a dict of plain values)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state returned by `get_rng_state`."""
    _generator.bit_generator.state = state
