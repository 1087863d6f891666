"""User arrays from ``.npy``/``.npz`` files: one loader, one-line errors, never pickle.

Each array's header is read and checked before its data: real numbers only (bool, int,
float: no object, string, complex or structured dtypes), at least one value, and no more
bytes than the file holds (a truncated file) or memory allows (a crafted header). Every
failure of numpy, zipfile or zlib on a damaged file is a :class:`ModelFileError` naming
the file, what is wrong and how to write it again.
"""

from __future__ import annotations

import os
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy

from snn2hw.errors import ModelFileError, UserInputError

SAVE_HINT = "Save arrays with numpy.save (.npy) or numpy.savez (.npz) from a numeric array."
# What numpy, zipfile and zlib raise on damaged files (header parsing uses tokenize/ast).
_BROKEN = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, struct.error,
           tokenize.TokenError, SyntaxError, NotImplementedError, RuntimeError, KeyError,
           OverflowError, RecursionError, MemoryError)


def memory_limit() -> int:
    """Bytes one array file may expand to: half the machine's memory (8 GiB if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def load(path: str | Path, *, what: str = "data file", mmap: bool = False
         ) -> np.ndarray | dict[str, np.ndarray]:
    """A ``.npy`` file's array, or a ``.npz`` file's arrays by name (checked as above).
    ``mmap``: a ``.npy`` file's array memory-mapped read-only (no memory limit: nothing is
    read until used); a ``.npz`` file is read as usual."""
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"{what} '{p}' does not exist",
                             hint="Check the path; snn2hw reads .npy and .npz files.")
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            start = fh.read(6)
            if not start:
                raise _problem(p, "is empty (0 bytes)")
            if start.startswith((b"PK\x03\x04", b"PK\x05\x06")):   # as numpy.load decides
                fh.close()
                return _npz(p)
            if start != npy.MAGIC_PREFIX:
                raise _problem(p, f"is neither a .npy nor a .npz file (it starts with "
                                  f"{start!r})")
            if size > memory_limit() and not mmap:
                raise _problem(p, f"holds {size} bytes, more than the {memory_limit()} snn2hw "
                                  "allows itself", hint="Pass a smaller data set.")
            fh.seek(0)
            return _array(fh, p, size, "", mmap)
    except ModelFileError:
        raise
    except _BROKEN as exc:
        raise _problem(p, f"is not a readable .npy/.npz file ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]})") from None


def _problem(p: Path, text: str, hint: str = SAVE_HINT) -> ModelFileError:
    return ModelFileError(f"'{p}' {text}", hint=hint)


def _npz(p: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    budget = memory_limit()
    with zipfile.ZipFile(p) as z:
        for info in z.infolist():
            name = info.filename.removesuffix(".npy")
            if info.file_size > budget:
                raise _problem(p, f"array '{name}' expands to {info.file_size} bytes, more "
                                  f"than the {budget} snn2hw allows itself",
                               hint="Pass a smaller data set (or fewer samples).")
            budget -= info.file_size
            with z.open(info) as fh:
                arrays[name] = _array(fh, p, info.file_size, f"array '{name}' ")
    if not arrays:
        raise _problem(p, "holds no arrays")
    return arrays


def _array(fh: IO[bytes], p: Path, size: int, label: str, mmap: bool = False) -> np.ndarray:
    """Check the header against the bytes that follow it, then read (or map) the data."""
    version = npy.read_magic(fh)
    if version not in ((1, 0), (2, 0)):
        raise _problem(p, f"{label}uses .npy format version {version}, which snn2hw does not "
                          "read")
    reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = reader(fh)
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise _problem(p, f"{label}has dtype {dtype}; snn2hw reads real numbers (bool, int "
                          "or float), not objects, strings, complex or structured records")
    count = int(np.prod(shape, dtype=object))
    if count == 0:
        raise _problem(p, f"{label}has shape {shape}: no values", hint="Pass a non-empty array.")
    need, have = count * dtype.itemsize, size - fh.tell()
    if need > have:
        raise _problem(p, f"{label}is cut short: its header announces {need} bytes of data "
                          f"({shape} {dtype}), the file holds {have}",
                       hint="Write the file again (numpy.save or numpy.savez).")
    if mmap:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    data = np.frombuffer(fh.read(need), dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C").copy()


def finite(arr: np.ndarray, p: str | Path, label: str = "") -> np.ndarray:
    """``arr`` if every value is finite, else a one-line error naming the file."""
    if arr.dtype.kind == "f" and not _all_finite(arr):
        bad = int((~np.isfinite(arr)).sum())
        raise ModelFileError(f"'{p}' {label}holds {bad} NaN or infinite value(s)",
                             hint="Replace or drop those samples.")
    return arr


def _all_finite(arr: np.ndarray) -> bool:
    """np.isfinite(arr).all(), a memory-mapped array a few rows at a time."""
    if not isinstance(arr, np.memmap) or arr.ndim == 0:
        return bool(np.isfinite(arr).all())
    rows = max(1, (64 << 20) // max(1, arr[:1].nbytes))
    return all(np.isfinite(arr[i:i + rows]).all() for i in range(0, len(arr), rows))


def labels(arr: np.ndarray, p: str | Path) -> np.ndarray:
    """Class labels: finite integers (integer-valued floats are accepted), flattened."""
    y = finite(np.asarray(arr).ravel(), p, "labels ")
    if y.dtype.kind == "f":
        if not np.array_equal(y, np.round(y)):
            raise ModelFileError(f"'{p}' has fractional labels (e.g. {y[y != np.round(y)][0]})",
                                 hint="Labels are class indices: 0, 1, 2, ...")
        y = y.astype(np.int64)
    return y


__all__ = ["SAVE_HINT", "finite", "labels", "load", "memory_limit"]
