"""Xylo programs in the program-image file (format version 4, docs/program_image.md).

Layout::

    /                 attrs: format, format_version = 4, family = "xylo-iaf",
                      target_name, target_hash
    /target_toml      the target file's text, verbatim
    /metadata         attrs: free-form str/int/float/bool
    /xylo             attrs: weight_shift_in, weight_shift_rec, weight_shift_out
                      datasets (int32): weights_in (n_in, n_hidden, n_syn), weights_rec
                      (n_hidden, n_hidden, n_syn), weights_out (n_hidden, n_out), dash_mem,
                      dash_syn (n_hidden, n_syn), dash_mem_out, dash_syn_out, threshold,
                      threshold_out, bias, bias_out, aliases (-1: none)

Loihi-family programs keep versions 1-3 and have no ``family`` attribute; a file without
one is a Loihi-family program.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
from snn2hw_emulator.errors import ImageFormatError
from snn2hw_emulator.xylo_program import ARRAYS, FAMILY, SHIFTS, XyloProgram

_HINT = "Recompile the model (the image was edited or is corrupt)."
#: Largest dataset a Xylo image may hold (a 1,000 x 1,000 x 2 recurrent matrix is 2e6).
MAX_ELEMENTS = 2**24


def is_xylo_file(f: h5py.File) -> bool:
    """True if the open image holds a Xylo program (its ``family`` attribute)."""
    fam = f.attrs.get("family", None)
    return (fam.decode() if isinstance(fam, bytes) else fam) == FAMILY


def write(f: h5py.File, program: XyloProgram, dataset: Any) -> None:
    """Write ``program``; ``dataset(group, name, array)`` is image.py's checksummed writer."""
    f.attrs.update(format_version=program.format_version, family=FAMILY,
                   target_name=program.target_name, target_hash=program.target_hash)
    f.create_dataset("target_toml", data=program.target_toml)
    f.create_group("metadata").attrs.update(program.metadata)
    h = f.create_group("xylo")
    h.attrs.update({s: int(getattr(program, s)) for s in SHIFTS})
    for name, arr in program.arrays().items():
        dataset(h, name, arr.astype(np.int32))


def _fail(where: str, what: str) -> None:
    raise ImageFormatError(f"program image entry {where} {what}", hint=_HINT)


def check(f: h5py.File) -> None:
    """The Xylo entries exist with the types the reader converts (ranges and shapes are
    validate's): integer shift attributes, integer datasets of bounded size."""
    if "xylo" not in f or not isinstance(f["xylo"], h5py.Group):
        _fail("'/xylo'", "is missing or not a group")
    h = f["xylo"]
    for s in SHIFTS:
        v = h.attrs.get(s, None)
        if v is None or np.ndim(v) != 0 or np.asarray(v).dtype.kind not in "iu":
            _fail("'/xylo'", f"attribute '{s}' is missing or not an integer")
    for name in ARRAYS:
        ds = h.get(name, None, getlink=False)
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iu":
            _fail(f"'/xylo/{name}'", "is missing or does not hold integers")
        if ds.size > MAX_ELEMENTS:
            _fail(f"'/xylo/{name}'", f"has {ds.size} elements; at most {MAX_ELEMENTS}")
    extra = sorted(set(h) - set(ARRAYS))
    if extra:
        _fail(f"'/xylo/{extra[0]}'", "is not part of a Xylo program")


def read(f: h5py.File, text: Any) -> XyloProgram:
    """The Xylo program of a checked file; ``text(value)`` decodes an attribute."""
    h = f["xylo"]
    meta = {k: (v.item() if isinstance(v, np.generic) else text(v) if isinstance(v, bytes)
                else v) for k, v in f["metadata"].attrs.items()} if "metadata" in f else {}
    return XyloProgram(
        target_name=text(f.attrs["target_name"]), target_hash=text(f.attrs["target_hash"]),
        target_toml=text(f["target_toml"][()]),
        **{name: h[name][()].astype(np.int64) for name in ARRAYS},
        **{s: int(h.attrs[s]) for s in SHIFTS}, metadata=meta,
        format_version=int(f.attrs["format_version"]))
