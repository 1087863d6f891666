"""Program image files (HDF5): save, load and validate.

Layout (format ``snn2hw-program`` version 3; documented in docs/program_image.md)::

    /                 attrs: format, format_version, target_name, target_hash
    /target_toml      the target file's text, verbatim (its sha256 is target_hash)
    /metadata         attrs: free-form str/int/float/bool
    /ports/<name>     attrs: order, size, shape, message_bits
    /groups/<name>    attrs: order, model, size, shape, du, dv, vth, reset_interval,
                      reset_offset [, act_mode, cum_error, spike_exp, state_exp: sigma_delta,
                      version 3]; datasets: bias_mant, bias_exp, u0, v0 (int32)
    /blocks/<name>    attrs: order, kind, source, target, weight_exp, num_weight_bits,
                      sign_mode, num_message_bits [, stride, padding, dilation, groups];
                      datasets: weights (dense, delay_dense, conv; codebook: indices)
                      or rows/cols/values + attr dense_shape (sparse, COO); delays;
                      codebook (codebook blocks, version >= 2)
    /cores/<index>    attrs: chip, groups, blocks
    /outputs/<name>   attrs: order, group

Every dataset carries a Fletcher-32 checksum, so flipped bytes are detected on read.
Writes go to a temporary file in the same folder, then ``os.replace``. Version 2 only
added codebook blocks, version 3 only sigma-delta groups: older files are read unchanged
(and keep their version). Validation is in validate.py.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp
from snn2hw_emulator import xylo_image
from snn2hw_emulator.errors import ImageFormatError
from snn2hw_emulator.image_check import check_file
from snn2hw_emulator.kernels import GRADED_MODELS
from snn2hw_emulator.program import (
    FORMAT_NAME,
    READABLE_VERSIONS,
    Core,
    NeuronGroup,
    OutputPort,
    Port,
    Program,
    SynapseBlock,
    coo_entries,
)
from snn2hw_emulator.validate import GROUP_ARRAYS as _GROUP_ARRAYS
from snn2hw_emulator.validate import KINDS, target_of, validate
from snn2hw_emulator.validate import VERSIONS as _VERSIONS
from snn2hw_emulator.xylo_program import XYLO_VERSION, is_xylo

__all__ = ["KINDS", "load", "save", "target_of", "validate"]


# --------------------------------------------------------------------------- save


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    data = np.ascontiguousarray(data)
    if data.size:
        group.create_dataset(name, data=data, fletcher32=True, compression="gzip")
    else:
        group.create_dataset(name, data=data)


def _write(f: h5py.File, program: Program) -> None:
    if is_xylo(program):
        f.attrs["format"] = FORMAT_NAME
        xylo_image.write(f, program, _dataset)
        return
    f.attrs.update(format=FORMAT_NAME, format_version=program.format_version,
                   target_name=program.target_name, target_hash=program.target_hash)
    f.create_dataset("target_toml", data=program.target_toml)
    f.create_group("metadata").attrs.update(program.metadata)
    ports = f.create_group("ports")
    for k, p in enumerate(program.ports):
        ports.create_group(p.name).attrs.update(order=k, size=p.size, shape=np.array(p.shape),
                                                message_bits=p.message_bits)
    groups = f.create_group("groups")
    for k, g in enumerate(program.groups):
        h = groups.create_group(g.name)
        h.attrs.update(order=k, model=g.model, size=g.size, shape=np.array(g.shape), du=g.du,
                       dv=g.dv, vth=g.vth, reset_interval=g.reset_interval,
                       reset_offset=g.reset_offset)
        if g.model in GRADED_MODELS:            # version 3
            h.attrs.update(act_mode=g.act_mode, cum_error=bool(g.cum_error),
                           spike_exp=g.spike_exp, state_exp=g.state_exp)
        for name in _GROUP_ARRAYS:
            _dataset(h, name, np.asarray(getattr(g, name), dtype=np.int32))
    blocks = f.create_group("blocks")
    for k, b in enumerate(program.blocks):
        h = blocks.create_group(b.name)
        h.attrs.update(order=k, kind=b.kind, source=b.source, target=b.target,
                       weight_exp=b.weight_exp, num_weight_bits=b.num_weight_bits,
                       sign_mode=b.sign_mode, num_message_bits=b.num_message_bits)
        if b.kind == "sparse":
            h.attrs["dense_shape"] = np.array(b.weights.shape)
            for name, arr in zip(("rows", "cols", "values"), coo_entries(b.weights)):
                _dataset(h, name, arr.astype(np.int32))
        else:
            _dataset(h, "weights", np.asarray(b.weights, dtype=np.int32))
        if b.delays is not None:
            _dataset(h, "delays", np.asarray(b.delays, dtype=np.int32))
        if b.codebook is not None:
            _dataset(h, "codebook", np.asarray(b.codebook, dtype=np.int32))
        for key, value in (b.conv or {}).items():
            h.attrs[key] = np.asarray(value)
    cores = f.create_group("cores")
    for c in program.cores:
        cores.create_group(str(c.index)).attrs.update(chip=c.chip, groups=list(c.groups) or [""],
                                                      blocks=list(c.blocks) or [""])
    outs = f.create_group("outputs")
    for k, o in enumerate(program.outputs):
        outs.create_group(o.name).attrs.update(order=k, group=o.group)


def save(program: Program, path: str | Path) -> None:
    """Validate and write atomically (nothing is left behind on failure)."""
    validate(program)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, program)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)           # the usual mode, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- load


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ordered(group: h5py.Group) -> list[tuple[str, h5py.Group]]:
    return sorted(group.items(), key=lambda kv: int(kv[1].attrs["order"]))


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(s for s in (_s(v) for v in np.atleast_1d(value)) if s)


def _read_block(name: str, h: h5py.Group, sizes: dict[str, int]) -> SynapseBlock:
    a = h.attrs
    kind = _s(a["kind"])
    if kind == "sparse":
        w = _read_coo(name, h, (sizes.get(_s(a["target"]), -1), sizes.get(_s(a["source"]), -1)))
    else:
        w = h["weights"][()]
    conv = ({k: (tuple(int(v) for v in a[k]) if np.ndim(a[k]) else int(a[k]))
             for k in ("stride", "padding", "dilation", "groups")} if kind == "conv" else None)
    if kind == "codebook" and "codebook" not in h:
        raise ValueError(f"codebook block '{name}' has no 'codebook' dataset")
    return SynapseBlock(name=name, kind=kind, source=_s(a["source"]),  # type: ignore[arg-type]
                        target=_s(a["target"]), weights=w, weight_exp=int(a["weight_exp"]),
                        num_weight_bits=int(a["num_weight_bits"]),
                        sign_mode=_s(a["sign_mode"]),  # type: ignore[arg-type]
                        num_message_bits=int(a["num_message_bits"]),
                        delays=h["delays"][()] if "delays" in h else None, conv=conv,
                        codebook=h["codebook"][()] if "codebook" in h else None)


def _read_coo(name: str, h: h5py.Group, expected: tuple[int, int]) -> sp.csr_matrix:
    """A sparse block's COO datasets as a csr matrix (never a dense one: its dense_shape
    may be far beyond memory). ``expected``: (target size, source size), checked before
    anything of that shape is allocated. Bad shapes or indices are ValueErrors."""
    shape = tuple(int(v) for v in np.ravel(h.attrs["dense_shape"]))
    if shape != expected:
        raise ValueError(f"block '{name}': dense_shape {shape} does not connect its source "
                         f"({expected[1]}) to its target ({expected[0]})")
    rows, cols, values = (h[k][()] for k in ("rows", "cols", "values"))
    if not (rows.ndim == cols.ndim == values.ndim == 1 and rows.size == cols.size ==
            values.size) or rows.dtype.kind not in "iu" or cols.dtype.kind not in "iu":
        raise ValueError(f"block '{name}': rows, cols and values must be integer vectors of "
                         "one length")
    if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[0] or
                      cols.max() >= shape[1]):
        raise ValueError(f"block '{name}': COO indices outside dense_shape {shape}")
    w = sp.csr_matrix((values, (rows.astype(np.int64), cols.astype(np.int64))), shape=shape)
    if w.nnz != values.size:
        raise ValueError(f"block '{name}': a synapse is listed twice in its COO entries")
    return w


def _sigma_delta_attrs(h: h5py.Group) -> dict[str, Any]:
    """A sigma-delta group's own attributes (version 3); absent on LIF groups."""
    if _s(h.attrs["model"]) not in GRADED_MODELS:
        return {}
    a = h.attrs
    return {"act_mode": _s(a["act_mode"]), "cum_error": bool(a["cum_error"]),
            "spike_exp": int(a["spike_exp"]), "state_exp": int(a["state_exp"])}


def _read(f: h5py.File) -> Program:
    ports = tuple(Port(n, int(h.attrs["size"]), tuple(int(v) for v in h.attrs["shape"]),
                       int(h.attrs["message_bits"])) for n, h in _ordered(f["ports"]))
    groups = tuple(NeuronGroup(
        name=n, model=_s(h.attrs["model"]), size=int(h.attrs["size"]),  # type: ignore[arg-type]
        shape=tuple(int(v) for v in h.attrs["shape"]), du=int(h.attrs["du"]),
        dv=int(h.attrs["dv"]), vth=int(h.attrs["vth"]),
        **{k: h[k][()] for k in _GROUP_ARRAYS},
        reset_interval=int(h.attrs["reset_interval"]), reset_offset=int(h.attrs["reset_offset"]),
        **_sigma_delta_attrs(h)) for n, h in _ordered(f["groups"]))
    sizes = {p.name: p.size for p in ports} | {g.name: g.size for g in groups}
    blocks = tuple(_read_block(n, h, sizes) for n, h in _ordered(f["blocks"]))
    cores = tuple(Core(int(n), int(h.attrs["chip"]), _strs(h.attrs["groups"]),
                       _strs(h.attrs["blocks"]))
                  for n, h in sorted(f["cores"].items(), key=lambda kv: int(kv[0])))
    outputs = tuple(OutputPort(n, _s(h.attrs["group"])) for n, h in _ordered(f["outputs"]))
    meta = {k: (v.item() if isinstance(v, np.generic) else _s(v) if isinstance(v, bytes) else v)
            for k, v in f["metadata"].attrs.items()}
    return Program(target_name=_s(f.attrs["target_name"]), target_hash=_s(f.attrs["target_hash"]),
                   target_toml=_s(f["target_toml"][()]), ports=ports, groups=groups,
                   blocks=blocks, cores=cores, outputs=outputs, metadata=meta,
                   format_version=int(f.attrs["format_version"]))


def load(path: str | Path) -> Any:
    """Read and validate a program image; every failure is an ImageFormatError."""
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError(f"program image '{path}' does not exist")
    try:
        with h5py.File(path, "r") as f:
            if _s(f.attrs.get("format", "")) != FORMAT_NAME:
                raise ImageFormatError(f"'{path}' is not an snn2hw program image (no "
                                       f"format='{FORMAT_NAME}' attribute)",
                                       hint="Create one with `snn2hw compile`.")
            version = int(f.attrs.get("format_version", -1))
            xylo = xylo_image.is_xylo_file(f)
            if version not in ((XYLO_VERSION,) if xylo else READABLE_VERSIONS):
                raise ImageFormatError(f"'{path}' has program format version {version}; this "
                                       f"snn2hw reads versions {_VERSIONS} (Loihi family) "
                                       f"and {XYLO_VERSION} (Xylo)",
                                       hint="Recompile the model with this snn2hw version.")
            check_file(f)                      # links, attribute types, dataset sizes
            program = xylo_image.read(f, _s) if xylo else _read(f)
    except ImageFormatError:
        raise
    except OSError as exc:
        raise ImageFormatError(f"'{path}' cannot be read as a program image: it is not HDF5, "
                               f"or truncated or corrupt ({str(exc).split('(')[-1].rstrip(')')})",
                               hint="Recompile or copy the file again.") from None
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:   # h5py: corrupt headers
        raise ImageFormatError(f"'{path}' is a malformed program image (missing or bad entry: "
                               f"{exc})", hint="Recompile the model.") from None
    validate(program)
    return program
