"""The normative kernels' integer operations (kernels.py), vectorised over numpy arrays:
what every engine (engine.py, timebatch.py, neurons.py, synapses.py) computes with."""

from __future__ import annotations

import numpy as np

__all__ = ["floor_shift", "trunc_decay", "wrap32"]


def wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + 2**31) & (2**32 - 1)) - 2**31


def trunc_decay(x: np.ndarray, keep: int, decay_bits: int) -> np.ndarray:
    """x * keep / 2^decay_bits rounded toward zero (kernels.trunc_decay)."""
    p = x * keep
    return np.where(p < 0, -((-p) >> decay_bits), p >> decay_bits)


def floor_shift(x: np.ndarray, exp: int) -> np.ndarray:
    return x << exp if exp >= 0 else x >> -exp
