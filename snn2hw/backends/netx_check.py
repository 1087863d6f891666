"""Validation of a netx ``.net`` file's fields before netx_read converts any of them.

:func:`check` runs on the open file (called by ``netx_read.read``) and refuses, with a
one-line :class:`ModelFileError` naming the layer, the field, the limit and a way out:

* ``/layer`` entries that are not exactly ``0..n-1`` (a missing layer index);
* a layer without ``type``, a ``dense``/``conv`` layer without ``shape`` or ``weight``, a
  conv layer without ``neuron`` or without any of ``stride``, ``padding``, ``dilation``
  (netx reads them; a missing ``groups`` is taken as 1, as netx_read does);
* numeric fields that are strings, NaN, infinite or not whole numbers (netx truncates
  with ``astype(int)``; snn2hw refuses rather than guess), or out of range: shape
  dimensions 1..2^24 with at most ``MAX_NEURONS`` neurons per layer, ``|weight|`` below
  2^15 (the program image's weight range), ``|bias|`` below 2^23 (the 24-bit state),
  ``vThMant`` 0..2^23-1 (CUBA/LOIHI: 0..2^17, netx's default integrator's 131072
  included), ``iDecay``/``vDecay`` 0..4096, delays 0..2^16, stride/dilation/groups >= 1,
  padding >= 0;
* weights whose shape does not connect the previous layer to this one (transposed
  dense weights, conv input channels), a conv output shape other than Lava's formula
  gives, groups not dividing the channels, a bias whose length is neither 1, one per
  channel nor one per neuron, and datasets above ``MAX_ELEMENTS`` (before reading them).

Only fields common to CUBA and SDNN layers are checked here, with ``vThMant``'s range
shared; SDNN specifics (``messageBits``, ``sigma_output``) are netx_read's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
from snn2hw_emulator.family import LAVA

from snn2hw.errors import ModelFileError

MAX_NEURONS = 2**26            # per layer
MAX_ELEMENTS = 2**28           # per dataset (weights: 1 GiB of int32)
_HINT = "Re-export the network with lava-dl (netx.hdf5 / slayer's export_hdf5)."
#: field -> (lowest, highest) accepted value, for every numeric field checked: weights in
#: the stored word, biases and thresholds in the state, decays up to one (Lava's widths,
#: family.LAVA: a .net file holds Lava's integers); the rest are plausibility bounds.
RANGES = {"weight": (-LAVA.weight_word_max, LAVA.weight_word_max),
          "bias": (-LAVA.v_max, LAVA.v_max), "vThMant": (0, LAVA.v_max),
          "iDecay": (0, LAVA.decay_one), "vDecay": (0, LAVA.decay_one),
          "delay": (0, 2**16), "stride": (1, 2**16), "dilation": (1, 2**16),
          "padding": (0, 2**16), "groups": (1, 2**16), "shape": (1, 2**24),
          "refDelay": (0, 2**16), "messageBits": (-(2**16), 2**16)}
CUBA_VTH_MAX = LAVA.vth_max + 1          # netx's default readout writes 2^17


def _fail(path: Path, k: int | None, what: str, hint: str = _HINT) -> ModelFileError:
    where = f"layer {k} of '{path.name}'" if k is not None else f"'{path.name}'"
    return ModelFileError(f"{where} {what}", hint=hint, node=None if k is None else f"layer{k}")


def _dataset(path: Path, k: int, h: h5py.Group, key: str) -> h5py.Dataset:
    ds = h[key]
    if not isinstance(ds, h5py.Dataset):
        raise _fail(path, k, f"has a group '{key}' where netx reads a dataset")
    if ds.size > MAX_ELEMENTS:
        raise _fail(path, k, f"has {ds.size} values in '{key}'; at most {MAX_ELEMENTS} are "
                    "read")
    return ds


def _numbers(path: Path, k: int, h: h5py.Group, key: str, name: str | None = None
             ) -> np.ndarray:
    """A numeric field as int64, after its type, finiteness, integrality and range."""
    name = name or key
    ds = _dataset(path, k, h, key)
    if ds.dtype.kind not in "biuf":
        raise _fail(path, k, f"has a {ds.dtype} '{name}'; netx reads numbers there")
    raw = np.asarray(ds[()])
    if raw.size == 0:
        raise _fail(path, k, f"has an empty '{name}'; netx reads at least one value there")
    values = raw.astype(np.float64) if raw.dtype.kind == "f" else raw
    if raw.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise _fail(path, k, f"has NaN or infinite values in '{name}'")
    lo, hi = RANGES[key]
    if values.size and (values.min() < lo or values.max() > hi):
        bad = values.min() if values.min() < lo else values.max()
        raise _fail(path, k, f"has '{name}' = {bad:g}, outside {lo}..{hi}")
    if raw.dtype.kind == "f" and not np.all(values == np.round(values)):
        bad = values.ravel()[np.flatnonzero(values != np.round(values))[0]]
        raise _fail(path, k, f"has a non-integer '{name}' ({bad:g}); netx's fixed-point "
                    "fields are integers")
    return values.astype(np.int64)


def _string(path: Path, k: int, h: h5py.Group, key: str, name: str) -> str:
    """A text field (netx decodes it): a non-empty string dataset."""
    ds = h[key]
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "SOU" or ds.size == 0:
        raise _fail(path, k, f"has a '{name}' that is not a string")
    value = np.ravel(ds[()])[0]
    if not isinstance(value, (bytes, str)):
        raise _fail(path, k, f"has a '{name}' that is not a string")
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def _neuron(path: Path, k: int, n: h5py.Group) -> None:
    if not isinstance(n, h5py.Group):
        raise _fail(path, k, "has a 'neuron' dataset where netx reads a group")
    kind = _string(path, k, n, "type", "neuron/type") if "type" in n else "?"
    for key in ("vThMant", "iDecay", "vDecay", "refDelay", "messageBits"):
        if key in n:
            v = _numbers(path, k, n, key, f"neuron/{key}")
            if key == "vThMant" and kind in ("CUBA", "LOIHI") and v.size and \
                    v.max() > CUBA_VTH_MAX:
                raise _fail(path, k, f"has 'neuron/vThMant' = {v.max()}, above {CUBA_VTH_MAX} "
                            "(CUBA thresholds are 17-bit)")


def _shape(path: Path, k: int, h: h5py.Group) -> tuple[int, ...]:
    shape = tuple(int(s) for s in _numbers(path, k, h, "shape").ravel())
    if not 1 <= len(shape) <= 3:
        raise _fail(path, k, f"has shape {shape}; netx layers have (n,) or (C, H, W)")
    if int(np.prod(shape, dtype=object)) > MAX_NEURONS:
        raise _fail(path, k, f"has shape {shape}: {int(np.prod(shape, dtype=object))} "
                    f"neurons, more than {MAX_NEURONS} per layer")
    return shape


def _pair(path: Path, k: int, h: h5py.Group, key: str) -> tuple[int, int]:
    v = _numbers(path, k, h, key).ravel()
    if v.size not in (1, 2):
        raise _fail(path, k, f"has a conv '{key}' of {v.size} values; netx reads 1 or 2")
    return (int(v[0]), int(v[-1]))


def _conv(path: Path, k: int, h: h5py.Group, shape: tuple[int, ...],
          prev: tuple[int, ...] | None) -> None:
    missing = [key for key in ("stride", "padding", "dilation") if key not in h]
    if missing:
        raise _fail(path, k, f"is a conv layer without {', '.join(missing)}",
                    hint="netx reads stride, padding and dilation on every conv layer; "
                         "re-export it.")
    stride, pad, dil = (_pair(path, k, h, key) for key in ("stride", "padding", "dilation"))
    groups = int(_numbers(path, k, h, "groups").ravel()[0]) if "groups" in h else 1
    w = h["weight"].shape
    w = w[:4] if len(w) == 5 and w[4] == 1 else w
    if len(w) != 4 or len(shape) != 3:
        raise _fail(path, k, f"has conv weights {tuple(h['weight'].shape)} and shape {shape}; "
                    "netx needs (C_out, C_in/groups, kH, kW) and (C, H, W)")
    if w[0] != shape[0] or shape[0] % groups:
        raise _fail(path, k, f"has conv weights {w} for {shape[0]} output channels in "
                    f"{groups} groups")
    if prev is None or len(prev) != 3:
        return
    if w[1] * groups != prev[0]:
        raise _fail(path, k, f"has conv weights {w} ({w[1]} x {groups} groups input channels) "
                    f"after a layer of shape {prev}")
    for axis in (1, 2):
        s, p, d = stride[axis - 1], pad[axis - 1], dil[axis - 1]
        out = (prev[axis] + 2 * p - d * (w[axis + 1] - 1) - 1) // s + 1
        if out != shape[axis]:
            raise _fail(path, k, f"has shape {shape}, but stride {s}, padding {p} and "
                        f"dilation {d} give {out} along axis {axis} from {prev}")


def _layer(path: Path, k: int, h: Any, prev: tuple[int, ...] | None
           ) -> tuple[int, ...] | None:
    """Check one layer; its output shape (None where it does not fix one)."""
    if not isinstance(h, h5py.Group):
        raise _fail(path, k, "is a dataset where netx reads a group")
    if "type" not in h or not isinstance(h["type"], h5py.Dataset) or \
            h["type"].dtype.kind not in "SOU":
        raise _fail(path, k, "has no 'type' string", hint="netx needs every layer's type "
                    "(input, dense, conv, flatten, ...).")
    kind = _string(path, k, h, "type", "type")
    shape = _shape(path, k, h) if "shape" in h else None
    if "neuron" in h:
        _neuron(path, k, h["neuron"])
    for key in ("weight", "bias", "delay"):
        if key in h:
            _numbers(path, k, h, key)
    if kind == "input":
        return shape
    if kind not in ("dense", "conv") or shape is None:
        if kind in ("dense", "conv"):
            raise _fail(path, k, f"is a {kind} layer without a shape")
        return shape if kind == "flatten" else None
    if "weight" not in h:
        raise _fail(path, k, f"is a {kind} layer without a weight")
    size = int(np.prod(shape))
    if kind == "conv":
        if "neuron" not in h:
            raise _fail(path, k, "is a conv layer without a neuron group",
                        hint="netx needs a neuron group on conv layers.")
        _conv(path, k, h, shape, prev)
    else:
        w = h["weight"].shape
        if len(w) == 2 and w[0] != size:
            raise _fail(path, k, f"has dense weights {w} for {size} neurons (netx needs "
                        "(out, in); transposed?)")
        if len(w) != 2 and (len(w) != 1 or h["weight"].size % size):
            raise _fail(path, k, f"has dense weights {w} for {size} neurons (netx needs "
                        "(out, in), or a flat out * in vector)")
        n_in = w[1] if len(w) == 2 else h["weight"].size // size
        if prev is not None and int(np.prod(prev)) != n_in:
            raise _fail(path, k, f"has dense weights {w} taking {n_in} inputs after a layer "
                        f"of {int(np.prod(prev))} neurons (netx needs (out, in); transposed?)")
    if "bias" in h:
        n = h["bias"].size
        if n not in (1, shape[0] if kind == "conv" else size, size):
            raise _fail(path, k, f"has {n} biases for a {kind} layer of shape {shape} (netx "
                        "takes 1, one per neuron or, on conv layers, one per channel)")
    return shape


def check(path: Path, f: h5py.File) -> None:
    """Raise ModelFileError for the first field netx_read must not read (module doc); a
    file whose HDF5 structure or data cannot be read (flipped bytes) is one too."""
    try:
        _check(path, f)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise _fail(path, None, f"cannot be read as a netx file: it is truncated or corrupt "
                    f"({' '.join(str(exc).split())[:120]})",
                    hint="Copy or export the file again.") from None


def _check(path: Path, f: h5py.File) -> None:
    layers = f["layer"]
    if not isinstance(layers, h5py.Group):
        raise _fail(path, None, "has a /layer dataset where netx reads a group")
    names = set(layers)
    missing = [k for k in range(len(names)) if str(k) not in names]
    if missing:
        extra = sorted(names - {str(k) for k in range(len(names))})
        raise _fail(path, None, f"has no layer {missing[0]} (its /layer entries are "
                    f"{', '.join(sorted(names, key=lambda s: (len(s), s))[:6])}; "
                    f"'{extra[0]}' is not an index 0..{len(names) - 1})")
    prev: tuple[int, ...] | None = None
    for k in range(len(names)):
        prev = _layer(path, k, layers[str(k)], prev)
