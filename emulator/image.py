"""Program image files (HDF5): save, load and validate.

Layout (format ``snn2hw-program`` version 2; documented in docs/program_image.md)::

    /                 attrs: format, format_version, target_name, target_hash
    /target_toml      the target file's text, verbatim (its sha256 is target_hash)
    /metadata         attrs: free-form str/int/float/bool
    /ports/<name>     attrs: order, size, shape, message_bits
    /groups/<name>    attrs: order, model, size, shape, du, dv, vth, reset_interval,
                      reset_offset; datasets: bias_mant, bias_exp, u0, v0 (int32)
    /blocks/<name>    attrs: order, kind, source, target, weight_exp, num_weight_bits,
                      sign_mode, num_message_bits [, stride, padding, dilation, groups];
                      datasets: weights (dense, delay_dense, conv; codebook: indices)
                      or rows/cols/values + attr dense_shape (sparse, COO); delays;
                      codebook (codebook blocks, version >= 2)
    /cores/<index>    attrs: chip, groups, blocks
    /outputs/<name>   attrs: order, group

Every dataset carries a Fletcher-32 checksum, so flipped bytes are detected on read.
Writes go to a temporary file in the same folder, then ``os.replace``. Version 2 only
added codebook blocks: version-1 files are read unchanged (and keep their version).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError
from snn2hw_emulator.program import (CODEBOOK_VERSION, FORMAT_NAME, READABLE_VERSIONS, Core,
                                     NeuronGroup, OutputPort, Port, Program, SynapseBlock)

_GROUP_ARRAYS = ("bias_mant", "bias_exp", "u0", "v0")
KINDS = ("dense", "sparse", "delay_dense", "conv", "codebook")
_VERSIONS = " and ".join(str(v) for v in READABLE_VERSIONS)


# --------------------------------------------------------------------------- target limits


@dataclass(frozen=True)
class Limits:
    """The parts of the embedded target file the emulator needs."""

    numeric: dict[str, int]
    core: dict[str, int]
    chip: dict[str, Any]
    cost: dict[str, float]


def limits(program: Program) -> Limits:
    try:
        table = tomllib.loads(program.target_toml)
        return Limits(dict(table["numeric"]), dict(table["core"]), dict(table["chip"]),
                      dict(table["cost"]))
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise ImageFormatError(f"the embedded target file is unusable ({exc})",
                               hint="Recompile the program.") from None


# --------------------------------------------------------------------------- save


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    data = np.ascontiguousarray(data)
    if data.size:
        group.create_dataset(name, data=data, fletcher32=True, compression="gzip")
    else:
        group.create_dataset(name, data=data)


def _write(f: h5py.File, program: Program) -> None:
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
        for name in _GROUP_ARRAYS:
            _dataset(h, name, np.asarray(getattr(g, name), dtype=np.int32))
    blocks = f.create_group("blocks")
    for k, b in enumerate(program.blocks):
        h = blocks.create_group(b.name)
        h.attrs.update(order=k, kind=b.kind, source=b.source, target=b.target,
                       weight_exp=b.weight_exp, num_weight_bits=b.num_weight_bits,
                       sign_mode=b.sign_mode, num_message_bits=b.num_message_bits)
        w = np.asarray(b.weights, dtype=np.int32)
        if b.kind == "sparse":
            rows, cols = np.nonzero(w)
            h.attrs["dense_shape"] = np.array(w.shape)
            for name, arr in (("rows", rows), ("cols", cols), ("values", w[rows, cols])):
                _dataset(h, name, arr.astype(np.int32))
        else:
            _dataset(h, "weights", w)
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


def _read_block(name: str, h: h5py.Group) -> SynapseBlock:
    a = h.attrs
    kind = _s(a["kind"])
    if kind == "sparse":
        w = np.zeros(tuple(int(v) for v in a["dense_shape"]), dtype=np.int32)
        w[h["rows"][()], h["cols"][()]] = h["values"][()]
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


def _read(f: h5py.File) -> Program:
    ports = tuple(Port(n, int(h.attrs["size"]), tuple(int(v) for v in h.attrs["shape"]),
                       int(h.attrs["message_bits"])) for n, h in _ordered(f["ports"]))
    groups = tuple(NeuronGroup(
        name=n, model=_s(h.attrs["model"]), size=int(h.attrs["size"]),  # type: ignore[arg-type]
        shape=tuple(int(v) for v in h.attrs["shape"]), du=int(h.attrs["du"]),
        dv=int(h.attrs["dv"]), vth=int(h.attrs["vth"]),
        **{k: h[k][()] for k in _GROUP_ARRAYS},
        reset_interval=int(h.attrs["reset_interval"]), reset_offset=int(h.attrs["reset_offset"]))
        for n, h in _ordered(f["groups"]))
    blocks = tuple(_read_block(n, h) for n, h in _ordered(f["blocks"]))
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


def load(path: str | Path) -> Program:
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
            if version not in READABLE_VERSIONS:
                raise ImageFormatError(f"'{path}' has program format version {version}; this "
                                       f"snn2hw reads versions {_VERSIONS}",
                                       hint="Recompile the model with this snn2hw version.")
            program = _read(f)
    except ImageFormatError:
        raise
    except OSError as exc:
        raise ImageFormatError(f"'{path}' cannot be read as a program image: it is not HDF5, "
                               f"or truncated or corrupt ({str(exc).split('(')[-1].rstrip(')')})",
                               hint="Recompile or copy the file again.") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise ImageFormatError(f"'{path}' is a malformed program image (missing or bad entry: "
                               f"{exc})", hint="Recompile the model.") from None
    validate(program)
    return program


# --------------------------------------------------------------------------- validation


def _limit(ok: bool, what: str, hint: str = "Requantise the model for this target.") -> None:
    if not ok:
        raise ProgramLimitError(what, hint=hint)


def _check_group(g: NeuronGroup, num: dict[str, int]) -> None:
    dmax = 2 ** num["decay_bits"] - 1
    _limit(0 <= g.du <= dmax and 0 <= g.dv <= dmax,
           f"group '{g.name}': du={g.du}, dv={g.dv} outside 0..{dmax}")
    _limit(0 <= g.vth < 2 ** num["vth_mant_bits"],
           f"group '{g.name}': vth={g.vth} outside 0..{2 ** num['vth_mant_bits'] - 1}")
    bmax = 2 ** (num["bias_mant_bits"] - 1) - 1
    for name in _GROUP_ARRAYS:
        arr = np.asarray(getattr(g, name))
        _limit(arr.shape == (g.size,), f"group '{g.name}': {name} has shape {arr.shape}, "
               f"expected ({g.size},)", hint="Rebuild the program image.")
    bias = np.asarray(g.bias_mant)
    _limit(bool(np.all(np.abs(bias) <= bmax)),
           f"group '{g.name}': |bias_mant| up to {int(np.abs(bias).max())} exceeds {bmax} "
           f"({num['bias_mant_bits']}-bit mantissa)")
    bexp = np.asarray(g.bias_exp)
    _limit(bool(np.all((bexp >= 0) & (bexp <= num["bias_exp_max"]))),
           f"group '{g.name}': bias_exp outside 0..{num['bias_exp_max']}")
    smax = 2 ** (num["state_bits"] - 1)
    for name in ("u0", "v0"):
        arr = np.asarray(getattr(g, name))
        _limit(bool(np.all(np.abs(arr) < smax)),
               f"group '{g.name}': initial {name[0]} outside the {num['state_bits']}-bit state")
    _limit(g.model in ("lif", "lif_reset"), f"group '{g.name}': unknown model '{g.model}'",
           hint="Use 'lif' or 'lif_reset'.")
    _limit(g.model != "lif_reset" or (g.reset_interval >= 1 and g.reset_offset >= 0),
           f"group '{g.name}': lif_reset needs reset_interval >= 1 and reset_offset >= 0")
    _limit(int(np.prod(g.shape)) == g.size, f"group '{g.name}': shape {g.shape} does not hold "
           f"{g.size} neurons", hint="Rebuild the program image.")


def _check_block(b: SynapseBlock, sizes: dict[str, int], groups: set[str],
                 num: dict[str, int]) -> None:
    _limit(b.source in sizes, f"block '{b.name}': unknown source '{b.source}'",
           hint="Sources are ports or groups.")
    _limit(b.target in groups, f"block '{b.name}': unknown target group '{b.target}'",
           hint="Targets are neuron groups.")
    _limit(b.kind in KINDS, f"block '{b.name}': unknown kind '{b.kind}'",
           hint=f"Kinds are {', '.join(KINDS)}.")
    _limit(b.sign_mode in ("auto", "mixed", "exc", "inh"),
           f"block '{b.name}': unknown sign_mode '{b.sign_mode}'")
    w = np.asarray(b.weights)
    _limit(w.dtype.kind in "iu", f"block '{b.name}': weights must be integers",
           hint="Quantise the weights first.")
    if b.kind == "codebook":
        _check_codebook(b, w, sizes)
    else:
        _limit(b.codebook is None, f"block '{b.name}': a {b.kind} block has a codebook "
               "table; only kind 'codebook' uses one", hint="Rebuild the program image.")
        _limit(bool(np.all(np.abs(w.astype(np.int64)) < 2**15)),
               f"block '{b.name}': weights outside the 16-bit range")
    _limit(num["weight_exp_min"] <= b.weight_exp <= num["weight_exp_max"],
           f"block '{b.name}': weight_exp={b.weight_exp} outside "
           f"{num['weight_exp_min']}..{num['weight_exp_max']}")
    _limit(1 <= b.num_weight_bits <= num["weight_bits_max"],
           f"block '{b.name}': num_weight_bits={b.num_weight_bits} outside "
           f"1..{num['weight_bits_max']}")
    _limit(0 <= b.num_message_bits <= num["message_bits_max"],
           f"block '{b.name}': num_message_bits={b.num_message_bits} exceeds "
           f"{num['message_bits_max']}", hint="Use binary spikes on this target.")
    if b.kind != "conv":
        _limit(w.shape == (sizes[b.target], sizes[b.source]),
               f"block '{b.name}': weights {w.shape} do not connect {b.source} "
               f"({sizes[b.source]}) to {b.target} ({sizes[b.target]})",
               hint="Rebuild the program image.")
    if b.kind == "delay_dense":
        d = np.asarray(b.delays if b.delays is not None else -1)
        _limit(d.shape == w.shape and bool(np.all((d >= 0) & (d <= num["delay_max"]))),
               f"block '{b.name}': delays must match the weights and lie in "
               f"0..{num['delay_max']}")


def _check_codebook(b: SynapseBlock, w: np.ndarray, sizes: dict[str, int]) -> None:
    """A codebook block: table (R, K) ints, R in {1, n_target}, K >= 1, values within the
    dense full-scale range; indices in -1..K-1 (shape is checked with the other kinds)."""
    _limit(b.codebook is not None, f"block '{b.name}': kind 'codebook' needs a codebook "
           "table (R, K)", hint="Rebuild the program image.")
    table = np.asarray(b.codebook)
    _limit(table.ndim == 2 and table.dtype.kind in "iu", f"block '{b.name}': the codebook "
           f"must be a 2-D integer array (R, K); got shape {table.shape}, dtype {table.dtype}",
           hint="Quantise the shared weights first.")
    r, k = table.shape
    n_t = sizes.get(b.target, -1)
    _limit(k >= 1, f"block '{b.name}': the codebook has K=0 entries; it needs at least one",
           hint="Rebuild the program image.")
    _limit(r in (1, n_t), f"block '{b.name}': the codebook has {r} rows; expected 1 (one "
           f"table per block) or {n_t} (one per neuron of '{b.target}')",
           hint="Rebuild the program image.")
    _limit(bool(np.all(np.abs(table.astype(np.int64)) < 2**15)),
           f"block '{b.name}': codebook values outside the 16-bit range (the limit of "
           "full-scale weights)")
    if w.size:
        lo, hi = int(w.min()), int(w.max())
        _limit(lo >= -1 and hi <= k - 1, f"block '{b.name}': codebook indices span "
               f"{lo}..{hi}; they must lie in -1..{k - 1} (K={k}; -1 = no synapse)",
               hint="Rebuild the program image.")


def validate(program: Program) -> None:
    """Raise ProgramError naming the first inconsistency or out-of-range parameter."""
    if hashlib.sha256(program.target_toml.encode()).hexdigest() != program.target_hash:
        raise ImageFormatError("the embedded target file does not match its hash "
                               "(the image was edited or is corrupt)",
                               hint="Recompile the model.")
    version = program.format_version
    if version not in READABLE_VERSIONS:
        raise ImageFormatError(f"program format version {version} is unknown; this snn2hw "
                               f"handles versions {_VERSIONS}", hint="Recompile the model.")
    codebook = [b.name for b in program.blocks if b.kind == "codebook"]
    if codebook and version < CODEBOOK_VERSION:
        raise ImageFormatError(f"block '{codebook[0]}' is a codebook block, which format "
                               f"version {version} cannot hold (codebook blocks need version "
                               f"{CODEBOOK_VERSION})", hint="Recompile the model.")
    lim = limits(program)
    names = [p.name for p in program.ports] + [g.name for g in program.groups]
    dup = {n for n in names if names.count(n) > 1}
    _limit(not dup, f"name '{sorted(dup)[0] if dup else ''}' is used twice",
           hint="Ports and groups need distinct names.")
    sizes = {p.name: p.size for p in program.ports} | {g.name: g.size for g in program.groups}
    for p in program.ports:
        _limit(0 <= p.message_bits <= max(lim.numeric["message_bits_max"], 0) or
               p.message_bits == 0, f"port '{p.name}': message_bits={p.message_bits} exceeds "
               f"{lim.numeric['message_bits_max']}")
    for g in program.groups:
        _check_group(g, lim.numeric)
    for b in program.blocks:
        _check_block(b, sizes, {g.name for g in program.groups}, lim.numeric)
    _check_cores(program, lim)
    for o in program.outputs:
        _limit(o.group in sizes and o.group not in {p.name for p in program.ports},
               f"output '{o.name}' refers to unknown group '{o.group}'")


def _check_cores(program: Program, lim: Limits) -> None:
    placed = [g for c in program.cores for g in c.groups]
    groups = {g.name: g for g in program.groups}
    for g in groups:
        _limit(placed.count(g) == 1, f"group '{g}' is placed on {placed.count(g)} cores; "
               "it must be on exactly one", hint="Remap the program.")
    for c in program.cores:
        n = sum(groups[g].size for g in c.groups if g in groups)
        _limit(n <= lim.core["neurons_max"], f"core {c.index} holds {n} neurons; the target "
               f"allows {lim.core['neurons_max']}", hint="Remap onto more cores.")
        _limit(0 <= c.chip < lim.chip["chips_max"], f"core {c.index} is on chip {c.chip}; the "
               f"target has {lim.chip['chips_max']}")
