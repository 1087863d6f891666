"""Checks of a program image's HDF5 structure before anything is read from it.

``check_file`` runs on the open file, after the format name and version: every entry is a
hard link inside the file (a soft or external link, which could make the reader open
another file, is refused), every attribute the reader converts has the type the format
gives it (an integer is an integer: 6.9 or "7" is refused, not truncated), every dataset
holds integers and is no larger than ``MAX_ELEMENTS``, and metadata values are scalars.
Sparse blocks' ``rows``/``cols``/``values`` and ``dense_shape`` are checked by the sparse
reader; ranges and cross-references are checked by validate.py on the Program.
Each refusal is an ImageFormatError naming the entry, what it must be and a way out.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
from snn2hw_emulator import xylo_image
from snn2hw_emulator.errors import ImageFormatError

#: Largest dataset (elements) a program image may hold: 2^28 int32 values (1 GiB).
MAX_ELEMENTS = 2**28
_HINT = "Recompile the model (the image was edited or is corrupt)."

_INT, _STR, _INTS, _STRS, _BOOL = "an integer", "a string", "integers", "strings", "a boolean"
_PORT = {"order": _INT, "size": _INT, "shape": _INTS, "message_bits": _INT}
_GROUP = {"order": _INT, "model": _STR, "size": _INT, "shape": _INTS, "du": _INT, "dv": _INT,
          "vth": _INT, "reset_interval": _INT, "reset_offset": _INT}
_GRADED = {"act_mode": _STR, "cum_error": _BOOL, "spike_exp": _INT, "state_exp": _INT}
_BLOCK = {"order": _INT, "kind": _STR, "source": _STR, "target": _STR, "weight_exp": _INT,
          "num_weight_bits": _INT, "sign_mode": _STR, "num_message_bits": _INT}
_CONV = {"stride": _INTS, "padding": _INTS, "dilation": _INTS, "groups": _INT}
_CORE = {"chip": _INT, "groups": _STRS, "blocks": _STRS}
_OUTPUT = {"order": _INT, "group": _STR}
_ROOT = {"format": _STR, "format_version": _INT, "target_name": _STR, "target_hash": _STR}
_SPARSE_OWN = ("rows", "cols", "values")


def _fail(where: str, what: str) -> None:
    raise ImageFormatError(f"program image entry {where} {what}", hint=_HINT)


def _is_str(v: Any) -> bool:
    return isinstance(v, (str, bytes))


def _typed(v: Any, want: str) -> bool:
    if want == _STR:
        return _is_str(v)
    if want == _BOOL:
        return isinstance(v, (bool, np.bool_))
    arr = np.asarray(v)
    if want == _INT:
        return arr.ndim == 0 and arr.dtype.kind in "iu"
    if want == _INTS:
        return arr.ndim <= 1 and arr.dtype.kind in "iu" and arr.size <= 8
    return arr.ndim <= 1 and (arr.dtype.kind in "SU" or
                              (arr.dtype.kind == "O" and all(_is_str(x) for x in arr.flat)))


def _attrs(obj: h5py.HLObject, spec: dict[str, str]) -> None:
    for key, want in spec.items():
        if key not in obj.attrs:
            _fail(f"'{obj.name}'", f"has no attribute '{key}'")
        value = obj.attrs[key]
        if not _typed(value, want):
            _fail(f"'{obj.name}'", f"attribute '{key}' = {value!r} is not {want}")


def _links(group: h5py.Group, seen: set[int], depth: int = 0) -> None:
    """Refuse soft and external links, and a group reached twice (hard-link cycles)."""
    if depth > 4:
        _fail(f"'{group.name}'", "is nested deeper than the format's 3 levels")
    for name in group:
        link = group.get(name, getlink=True)
        where = f"'{group.name.rstrip('/')}/{name}'"
        if isinstance(link, h5py.ExternalLink):
            _fail(where, f"is an external link (to '{link.filename}'); program images hold "
                  "only their own data")
        if not isinstance(link, h5py.HardLink):
            _fail(where, "is a soft link; program images hold only hard-linked entries")
        obj = group[name]
        key = hash(obj.id)
        if key in seen:
            _fail(where, "is linked a second time (a hard link to another entry)")
        seen.add(key)
        if isinstance(obj, h5py.Group):
            _links(obj, seen, depth + 1)


def _datasets(h: h5py.Group, skip: tuple[str, ...] = ()) -> None:
    for name, ds in h.items():
        if name in skip:
            continue
        if not isinstance(ds, h5py.Dataset):
            _fail(f"'{ds.name}'", "is a group where a dataset is expected")
        if ds.dtype.kind not in "iu":
            _fail(f"'{ds.name}'", f"has dtype {ds.dtype}; it must hold integers")
        if ds.size > MAX_ELEMENTS:
            _fail(f"'{ds.name}'", f"has {ds.size} elements; at most {MAX_ELEMENTS} are read")


def _members(f: h5py.File, name: str) -> list[h5py.Group]:
    if name not in f or not isinstance(f[name], h5py.Group):
        _fail(f"'/{name}'", "is missing or not a group")
    out = list(f[name].values())
    for obj in out:
        if not isinstance(obj, h5py.Group):
            _fail(f"'{obj.name}'", "is a dataset where a group is expected")
    return out


def check_file(f: h5py.File) -> None:
    """Raise ImageFormatError for the first entry of ``f`` the reader must not read."""
    try:
        _check(f)
    except ImageFormatError as exc:
        raise ImageFormatError(f"'{f.filename}': {exc.message}", hint=exc.hint) from None


def _check(f: h5py.File) -> None:
    _links(f, {hash(f.id)})
    _attrs(f, _ROOT)
    if "target_toml" not in f or not isinstance(f["target_toml"], h5py.Dataset) or \
            f["target_toml"].shape != () or f["target_toml"].dtype.kind not in "OS":
        _fail("'/target_toml'", "is missing or not a string")
    if xylo_image.is_xylo_file(f):             # format version 4: a Xylo program
        xylo_image.check(f)
        _metadata(f)
        return
    for p in _members(f, "ports"):
        _attrs(p, _PORT)
    for g in _members(f, "groups"):
        _attrs(g, _GROUP)
        if isinstance(g.attrs["model"], (str, bytes)) and \
                np.asarray(g.attrs["model"]).astype(str) in ("sigma_delta", "delta", "sigma"):
            _attrs(g, _GRADED)
        _datasets(g)
    for b in _members(f, "blocks"):
        _attrs(b, _BLOCK)
        sparse = np.asarray(b.attrs["kind"]).astype(str) == "sparse"
        if np.asarray(b.attrs["kind"]).astype(str) == "conv":
            _attrs(b, _CONV)
        _datasets(b, _SPARSE_OWN if sparse else ())
    for c in _members(f, "cores"):
        _attrs(c, _CORE)
    for o in _members(f, "outputs"):
        _attrs(o, _OUTPUT)
    _metadata(f)


def _metadata(f: h5py.File) -> None:
    if "metadata" in f:
        for key, value in f["metadata"].attrs.items():
            if not (_is_str(value) or np.ndim(value) == 0 and
                    np.asarray(value).dtype.kind in "biuf"):
                _fail("'/metadata'", f"attribute '{key}' is not a string, number or boolean")
