"""Work arrays the time-batched engine reuses from run to run (per thread).

At batch 256 a run of 784-1024-1024-10 writes about 280 MB of intermediate arrays (the
int8 products' int32 sums, the negated spikes they read). Allocated afresh, each is a new
mapping whose every page faults on first touch (about 60,000 faults a run, 30-50% of its
time here, and most of its run-to-run spread); reused, none does. Only arrays that never
leave the engine come from here: what a run returns is always its own.

The pool is per thread (Dask's worker threads run programs side by side), holds one array
per key, and is dropped whole when it would grow past :data:`CAP_BYTES`; :func:`release`
frees it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

import numpy as np

#: most bytes one thread's pool holds; a larger request empties the pool first
CAP_BYTES = 1 << 31

_LOCAL = threading.local()


def take(key: Hashable, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype`` held under ``key`` (the caller
    writes every element before reading any): the same memory as the last call with this
    key and shape in this thread."""
    pool: dict[Hashable, np.ndarray] = _LOCAL.__dict__.setdefault("pool", {})
    dtype = np.dtype(dtype)
    arr = pool.get(key)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        pool.pop(key, None)
        need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if need + sum(a.nbytes for a in pool.values()) > CAP_BYTES:
            pool.clear()
        arr = np.empty(shape, dtype)
        if need <= CAP_BYTES:
            pool[key] = arr
    return arr


def release() -> None:
    """Free this thread's work arrays."""
    _LOCAL.__dict__.pop("pool", None)


__all__ = ["CAP_BYTES", "release", "take"]
