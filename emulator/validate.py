"""Program validation: every parameter against the embedded target's limits, and the
program's internal consistency (names, shapes, placement, format version).

``validate`` raises a ProgramError naming the first problem, with one sentence and a hint.
Sigma-delta groups (format version 3) are checked by ``_check_sigma_delta``.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from typing import Any

import numpy as np
from snn2hw_emulator.cost import _ENERGY, _TIME
from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError
from snn2hw_emulator.program import (
    CODEBOOK_VERSION,
    READABLE_VERSIONS,
    SIGMA_DELTA_VERSION,
    NeuronGroup,
    Program,
    SynapseBlock,
    is_sparse,
)

GROUP_ARRAYS = ("bias_mant", "bias_exp", "u0", "v0")
KINDS = ("dense", "sparse", "delay_dense", "conv", "codebook")
MODELS = ("lif", "lif_reset", "sigma_delta", "delta", "sigma")
GRADED = ("sigma_delta", "delta", "sigma")
VERSIONS = " and ".join(str(v) for v in READABLE_VERSIONS)
_GROUP_ARRAYS = GROUP_ARRAYS
_VERSIONS = VERSIONS

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
        lim = Limits(dict(table["numeric"]), dict(table["core"]), dict(table["chip"]),
                     dict(table["cost"]))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ImageFormatError(f"the embedded target file is unusable ({exc})",
                               hint="Recompile the program.") from None
    _check_target(lim)
    return lim


#: Integer entries of the embedded target the emulator reads, with their accepted range.
TARGET_INTS = {
    "numeric": {"weight_bits_max": (1, 16), "weight_exp_min": (-32, 32),
                "weight_exp_max": (-32, 32), "state_bits": (2, 32), "decay_bits": (1, 24),
                "vth_mant_bits": (1, 31), "bias_mant_bits": (1, 31), "bias_exp_max": (0, 31),
                "message_bits_max": (0, 32), "delay_max": (0, 1024)},
    "core": {"neurons_max": (1, 2**31)},
    "chip": {"cores_max": (1, 2**20), "chips_max": (1, 2**20)},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_target(lim: Limits) -> None:
    """Types and ranges of every target entry the emulator and cost.py read."""
    def bad(where: str, value: Any, want: str) -> None:
        raise ImageFormatError(f"the embedded target file's {where} = {value!r} is not {want}",
                               hint="Recompile the model with an unedited target file.")

    for table, entries in TARGET_INTS.items():
        for key, (lo, hi) in entries.items():
            value = getattr(lim, table).get(key)
            if not _is_int(value) or not lo <= value <= hi:
                bad(f"[{table}] {key}", value, f"an integer in {lo}..{hi}")
    mesh = lim.chip.get("mesh")
    if not (isinstance(mesh, list) and len(mesh) == 2 and all(_is_int(v) and v >= 1
                                                               for v in mesh)):
        bad("[chip] mesh", mesh, "two integers >= 1")
    for key in (*_TIME.values(), *_ENERGY.values(), "barrier_time_ns", "static_power_mw"):
        value = lim.cost.get(key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and 0 <= value < 1e30):
            bad(f"[cost] {key}", value, "a number in 0..1e30")
    if not isinstance(lim.cost.get("estimated"), bool):
        bad("[cost] estimated", lim.cost.get("estimated"), "true or false")



# --------------------------------------------------------------------------- validation


def _limit(ok: bool, what: str, hint: str = "Requantise the model for this target.") -> None:
    if not ok:
        raise ProgramLimitError(what, hint=hint)


def _check_ints(where: str, obj: Any, names: tuple[str, ...]) -> None:
    """Scalar fields that must be integers (a float such as 6.9 or a string is refused)."""
    for name in names:
        value = getattr(obj, name)
        _limit(_is_int(value), f"{where}: {name}={value!r} is not an integer",
               hint="Rebuild the program image.")


def _check_shape(where: str, shape: Any, size: Any) -> None:
    _limit(_is_int(size) and 1 <= size < 2**31, f"{where}: size={size!r} is not an integer "
           "in 1..2^31-1", hint="Rebuild the program image.")
    ok = isinstance(shape, tuple) and len(shape) >= 1 and all(_is_int(v) and v >= 1
                                                              for v in shape)
    _limit(ok and int(np.prod(shape, dtype=object)) == size, f"{where}: shape {shape} does not "
           f"hold its size {size} (dimensions >= 1 whose product is the size)",
           hint="Rebuild the program image.")


def _check_group(g: NeuronGroup, num: dict[str, int]) -> None:
    _limit(g.model in MODELS, f"group '{g.name}': unknown model '{g.model}'",
           hint=f"Use one of {', '.join(MODELS)}.")
    _check_shape(f"group '{g.name}'", g.shape, g.size)
    _check_ints(f"group '{g.name}'", g, ("du", "dv", "vth", "reset_interval", "reset_offset",
                                         "spike_exp", "state_exp"))
    for name in _GROUP_ARRAYS:
        arr = np.asarray(getattr(g, name))
        _limit(arr.dtype.kind in "iu", f"group '{g.name}': {name} has dtype {arr.dtype}; "
               "it must hold integers", hint="Quantise the model (or rebuild the image).")
        _limit(arr.shape == (g.size,), f"group '{g.name}': {name} has shape {arr.shape}, "
               f"expected ({g.size},)", hint="Rebuild the program image.")
        _limit(bool(np.all(np.abs(arr.astype(np.int64)) < 2**31)), f"group '{g.name}': "
               f"{name} outside the 32-bit range", hint="Rebuild the program image.")
    if g.model in GRADED:
        _check_sigma_delta(g, num)
        return
    dmax = 2 ** num["decay_bits"] - 1
    _limit(0 <= g.du <= dmax and 0 <= g.dv <= dmax,
           f"group '{g.name}': du={g.du}, dv={g.dv} outside 0..{dmax}")
    _limit(0 <= g.vth < 2 ** num["vth_mant_bits"],
           f"group '{g.name}': vth={g.vth} outside 0..{2 ** num['vth_mant_bits'] - 1}")
    bmax = 2 ** (num["bias_mant_bits"] - 1) - 1
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
    _limit(g.model != "lif_reset" or (g.reset_interval >= 1 and g.reset_offset >= 0),
           f"group '{g.name}': lif_reset needs reset_interval >= 1 and reset_offset >= 0")


def _check_block(b: SynapseBlock, sizes: dict[str, int], groups: set[str],
                 num: dict[str, int], shapes: dict[str, tuple[int, ...]]) -> None:
    _limit(b.source in sizes, f"block '{b.name}': unknown source '{b.source}'",
           hint="Sources are ports or groups.")
    _limit(b.target in groups, f"block '{b.name}': unknown target group '{b.target}'",
           hint="Targets are neuron groups.")
    _limit(b.kind in KINDS, f"block '{b.name}': unknown kind '{b.kind}'",
           hint=f"Kinds are {', '.join(KINDS)}.")
    _limit(b.sign_mode in ("auto", "mixed", "exc", "inh"),
           f"block '{b.name}': unknown sign_mode '{b.sign_mode}'")
    _check_ints(f"block '{b.name}'", b, ("weight_exp", "num_weight_bits", "num_message_bits"))
    if is_sparse(b.weights):
        w = _check_csr(b)
    else:
        w = np.asarray(b.weights)
    _limit(w.dtype.kind in "iu", f"block '{b.name}': weights must be integers",
           hint="Quantise the weights first.")
    if b.kind == "codebook":
        _check_codebook(b, w, sizes)
    else:
        _limit(b.codebook is None, f"block '{b.name}': a {b.kind} block has a codebook "
               "table; only kind 'codebook' uses one", hint="Rebuild the program image.")
        stored = w.data if is_sparse(w) else w
        _limit(bool(np.all(np.abs(stored.astype(np.int64)) < 2**15)),
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
    if b.kind == "conv":
        _check_conv(b, w, shapes)
    else:
        _limit(w.shape == (sizes[b.target], sizes[b.source]),
               f"block '{b.name}': weights {w.shape} do not connect {b.source} "
               f"({sizes[b.source]}) to {b.target} ({sizes[b.target]})",
               hint="Rebuild the program image.")
    if b.kind == "delay_dense":
        d = np.asarray(b.delays if b.delays is not None else -1)
        _limit(d.shape == w.shape and bool(np.all((d >= 0) & (d <= num["delay_max"]))),
               f"block '{b.name}': delays must match the weights and lie in "
               f"0..{num['delay_max']}")


def conv_output(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Lava Conv's output length along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_conv(b: SynapseBlock, w: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> None:
    """Conv geometry: (x, y) pairs stride >= 1, dilation >= 1, padding >= 0, a stride and
    dilated kernel within the padded input, groups dividing both channel counts, weights
    (C_out, Kw, Kh, C_in/groups) and the target shape Lava's formula gives."""
    where, hint = f"block '{b.name}'", "Rebuild the program image."
    c = b.conv if isinstance(b.conv, dict) else {}
    for key, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
        v = c.get(key)
        _limit(isinstance(v, tuple) and len(v) == 2 and all(_is_int(x) and x >= lo
                                                            for x in v),
               f"{where}: conv {key}={v!r} must be an (x, y) pair of integers >= {lo}",
               hint=hint)
    groups = c.get("groups")
    _limit(_is_int(groups) and groups >= 1, f"{where}: conv groups={groups!r} must be an "
           "integer >= 1", hint=hint)
    src, dst = shapes[b.source], shapes[b.target]
    _limit(len(src) == 3 and len(dst) == 3, f"{where}: a conv block joins (W, H, C) shapes; "
           f"got {src} -> {dst}", hint=hint)
    _limit(w.ndim == 4, f"{where}: conv weights {w.shape} are not (C_out, Kw, Kh, C_in/groups)",
           hint=hint)
    (cin, cout) = src[2], dst[2]
    _limit(cin % groups == 0 and cout % groups == 0, f"{where}: conv groups={groups} does not "
           f"divide the channels ({cin} in, {cout} out)", hint=hint)
    _limit(w.shape[0] == cout and w.shape[3] == cin // groups, f"{where}: conv weights "
           f"{w.shape} do not fit {cin} -> {cout} channels in {groups} groups "
           f"(expected ({cout}, Kw, Kh, {cin // groups}))", hint=hint)
    for axis in (0, 1):
        s, p, d = c["stride"][axis], c["padding"][axis], c["dilation"][axis]
        span, extent = src[axis] + 2 * p, d * (w.shape[1 + axis] - 1) + 1
        _limit(w.shape[1 + axis] >= 1 and extent <= span and s <= span, f"{where}: conv "
               f"axis {'xy'[axis]}: stride {s} or dilated kernel {extent} exceeds the padded "
               f"input ({span})", hint=hint)
        out = conv_output(src[axis], w.shape[1 + axis], s, p, d)
        _limit(dst[axis] == out, f"{where}: conv target has {dst[axis]} along {'xy'[axis]}; "
               f"stride {s}, padding {p}, dilation {d} give {out}", hint=hint)


def _check_csr(b: SynapseBlock) -> Any:
    """A scipy sparse weight matrix: only kind "sparse" holds one; a 2-D csr matrix with
    its index arrays consistent and inside its shape (shape itself: with the others)."""
    w = b.weights
    _limit(b.kind == "sparse", f"block '{b.name}': a {b.kind} block has scipy sparse "
           "weights; only kind 'sparse' holds them", hint="Use kind 'sparse' or a dense array.")
    _limit(w.format == "csr" and len(w.shape) == 2, f"block '{b.name}': sparse weights must "
           f"be a 2-D scipy csr matrix, not {w.format}", hint="Convert with .tocsr().")
    try:
        w.check_format(full_check=True)
    except ValueError as exc:
        _limit(False, f"block '{b.name}': its csr weights are malformed ({exc})",
               hint="Rebuild the program image.")
    return w


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
    sd = [g.name for g in program.groups if g.model in GRADED]
    if sd and version < SIGMA_DELTA_VERSION:
        raise ImageFormatError(f"group '{sd[0]}' is a sigma-delta group, which format version "
                               f"{version} cannot hold (sigma-delta groups need version "
                               f"{SIGMA_DELTA_VERSION})", hint="Recompile the model.")
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
        _check_shape(f"port '{p.name}'", p.shape, p.size)
        _check_ints(f"port '{p.name}'", p, ("message_bits",))
        _limit(0 <= p.message_bits <= max(lim.numeric["message_bits_max"], 0) or
               p.message_bits == 0, f"port '{p.name}': message_bits={p.message_bits} exceeds "
               f"{lim.numeric['message_bits_max']}")
    for g in program.groups:
        _check_group(g, lim.numeric)
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    for b in program.blocks:
        _check_block(b, sizes, {g.name for g in program.groups}, lim.numeric, shapes)
    _check_cores(program, lim)
    for o in program.outputs:
        _limit(o.group in sizes and o.group not in {p.name for p in program.ports},
               f"output '{o.name}' refers to unknown group '{o.group}'")


def _check_cores(program: Program, lim: Limits) -> None:
    placed = [g for c in program.cores for g in c.groups]
    groups = {g.name: g for g in program.groups}
    blocks = {b.name for b in program.blocks}
    for c in program.cores:
        unknown = sorted(set(c.groups) - set(groups)) + sorted(set(c.blocks) - blocks)
        _limit(not unknown, f"core {c.index} names '{unknown[0] if unknown else ''}', which is "
               "no group or block of the program", hint="Remap the program.")
    for g in groups:
        _limit(placed.count(g) == 1, f"group '{g}' is placed on {placed.count(g)} cores; "
               "it must be on exactly one", hint="Remap the program.")
    index = [c.index for c in program.cores]
    top = lim.chip["chips_max"] * lim.chip["cores_max"]
    for c in program.cores:
        _limit(_is_int(c.index) and 0 <= c.index < top and index.count(c.index) == 1,
               f"core index {c.index!r} is not unique in 0..{top - 1} (chips_max x cores_max)",
               hint="Remap the program.")
        _check_ints(f"core {c.index}", c, ("chip",))
        n = sum(groups[g].size for g in c.groups if g in groups)
        _limit(n <= lim.core["neurons_max"], f"core {c.index} holds {n} neurons; the target "
               f"allows {lim.core['neurons_max']}", hint="Remap onto more cores.")
        _limit(0 <= c.chip < lim.chip["chips_max"], f"core {c.index} is on chip {c.chip}; the "
               f"target has {lim.chip['chips_max']}")


def _check_sigma_delta(g: NeuronGroup, num: dict[str, int]) -> None:
    """Lava's SigmaDelta, Delta and Sigma (docs/sigma_delta.md §6): vth >= 0 (netx SDNN
    files use 0: every change is sent), 3-bit exponents, the scaled threshold and bias
    inside the state width, graded spikes on the target, no LIF state; Delta has no bias
    and Sigma no parameters at all."""
    _limit(num["message_bits_max"] > 0, f"group '{g.name}' is a sigma-delta group, but the "
           "target has no graded spikes (message_bits_max = 0)",
           hint="Compile sigma-delta networks for loihi2.")
    _limit(g.act_mode in ("relu", "unit"), f"group '{g.name}': unknown act_mode "
           f"'{g.act_mode}'", hint="Use 'relu' or 'unit'.")
    for name in ("spike_exp", "state_exp"):
        value = getattr(g, name)
        _limit(isinstance(value, (int, np.integer)) and 0 <= value <= 7,
               f"group '{g.name}': {name}={value} outside 0..7 (3-bit)")
    k = g.spike_exp + g.state_exp
    smax = 2 ** (num["state_bits"] - 1)
    _limit(0 <= g.vth and g.vth << k < smax, f"group '{g.name}': vth={g.vth} must be >= 0 "
           f"and vth << {k} below 2^{num['state_bits'] - 1} (the {num['state_bits']}-bit state)")
    bias = np.asarray(g.bias_mant, dtype=np.int64)
    _limit(bool(np.all(np.abs(bias) << k < smax)), f"group '{g.name}': |bias| << {k} up to "
           f"{int(np.abs(bias).max(initial=0)) << k} exceeds the {num['state_bits']}-bit state")
    unused = {"delta": ("bias_mant",), "sigma": ("bias_mant",)}.get(g.model, ())
    for name in ("bias_exp", "u0", "v0", *unused):
        _limit(not np.any(np.asarray(getattr(g, name))), f"group '{g.name}': a {g.model} "
               f"group has no {name}; it must be 0", hint="Rebuild the program image.")
    _limit(g.du == 0 and g.dv == 0 and g.reset_interval == 0, f"group '{g.name}': a "
           "sigma-delta group has no du, dv or reset; they must be 0",
           hint="Rebuild the program image.")
    _limit(g.model != "sigma" or (g.vth == 0 and k == 0 and not g.cum_error),
           f"group '{g.name}': a sigma group (a running sum) has no vth, exponents or "
           "cum_error; they must be 0", hint="Rebuild the program image.")
