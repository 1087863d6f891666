"""Program validation: the program's internal consistency (names, types, shapes,
references, placement, format version), then every (program, target) design rule of
rules.py against the embedded target file (parsed by target.py into the same Target the
compiler uses).

Consistency problems raise a ProgramError naming the first one, with one sentence and a
hint; rule violations are all reported together in one ProgramLimitError. Full-scale
weights beyond the family's clip range are accepted: the hardware clips them, as Lava
does (rules.weights_in_full_scale); the compiler never emits them.
Sigma-delta groups (format version 3) are checked by ``_check_sigma_delta``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from snn2hw_emulator import rules, xylo_validate
from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError, TargetFileError
from snn2hw_emulator.program import (
    CODEBOOK_VERSION,
    READABLE_VERSIONS,
    SIGMA_DELTA_VERSION,
    NeuronGroup,
    Program,
    SynapseBlock,
    is_sparse,
)
from snn2hw_emulator.target import Target, parse_cached
from snn2hw_emulator.xylo_program import is_xylo

GROUP_ARRAYS = ("bias_mant", "bias_exp", "u0", "v0")
KINDS = ("dense", "sparse", "delay_dense", "conv", "codebook")
MODELS = ("lif", "lif_reset", "sigma_delta", "delta", "sigma")
GRADED = ("sigma_delta", "delta", "sigma")
VERSIONS = " and ".join(str(v) for v in READABLE_VERSIONS)
_GROUP_ARRAYS = GROUP_ARRAYS
_VERSIONS = VERSIONS

# --------------------------------------------------------------------------- the target

#: How a program's embedded target file is named in messages.
EMBEDDED = "the embedded target file"


def target_of(program: Program) -> Target:
    """The program's embedded target file as a validated Target (parsed once per text);
    an invalid one is an ImageFormatError naming the key."""
    try:
        return parse_cached(program.target_toml, EMBEDDED)
    except TargetFileError as exc:
        raise ImageFormatError(exc.message, hint="Recompile the model with an unedited "
                               "target file.") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


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


def _check_group(g: NeuronGroup) -> None:
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
        _check_sigma_delta(g)
        return
    _limit(g.model != "lif_reset" or (g.reset_interval >= 1 and g.reset_offset >= 0),
           f"group '{g.name}': lif_reset needs reset_interval >= 1 and reset_offset >= 0")


def _check_block(b: SynapseBlock, sizes: dict[str, int], groups: set[str],
                 shapes: dict[str, tuple[int, ...]]) -> None:
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
    if b.kind == "conv":
        _check_conv(b, w, shapes)
    else:
        _limit(w.shape == (sizes[b.target], sizes[b.source]),
               f"block '{b.name}': weights {w.shape} do not connect {b.source} "
               f"({sizes[b.source]}) to {b.target} ({sizes[b.target]})",
               hint="Rebuild the program image.")
    if b.kind == "delay_dense":
        d = np.asarray(b.delays if b.delays is not None else -1)
        _limit(d.shape == w.shape and d.dtype.kind in "iu", f"block '{b.name}': delays "
               f"{d.shape} must be integers matching the weights {w.shape}",
               hint="Rebuild the program image.")


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
    if w.size:
        lo, hi = int(w.min()), int(w.max())
        _limit(lo >= -1 and hi <= k - 1, f"block '{b.name}': codebook indices span "
               f"{lo}..{hi}; they must lie in -1..{k - 1} (K={k}; -1 = no synapse)",
               hint="Rebuild the program image.")


def validate(program: Program) -> None:
    """Raise a ProgramError naming the first inconsistency, then one ProgramLimitError
    listing every design-rule violation (rules.RULES) against the embedded target. A Xylo
    program is checked by xylo_validate (its own arrays and rules)."""
    if is_xylo(program):
        return xylo_validate.validate(program, target_of(program))
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
    target = target_of(program)
    names = [p.name for p in program.ports] + [g.name for g in program.groups]
    dup = {n for n in names if names.count(n) > 1}
    _limit(not dup, f"name '{min(dup) if dup else ''}' is used twice",
           hint="Ports and groups need distinct names.")
    sizes = {p.name: p.size for p in program.ports} | {g.name: g.size for g in program.groups}
    for p in program.ports:
        _check_shape(f"port '{p.name}'", p.shape, p.size)
        _check_ints(f"port '{p.name}'", p, ("message_bits",))
    for g in program.groups:
        _check_group(g)
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    for b in program.blocks:
        _check_block(b, sizes, {g.name for g in program.groups}, shapes)
    _check_cores(program, target)
    for o in program.outputs:
        _limit(o.group in sizes and o.group not in {p.name for p in program.ports},
               f"output '{o.name}' refers to unknown group '{o.group}'")
    refuse([v for v in rules.check(rules.subject(program), target) if not v.altered])


def refuse(violations: list[rules.Violation]) -> None:
    """One ProgramLimitError listing every violation (nothing: no error)."""
    if not violations:
        return
    hints = list(dict.fromkeys(v.hint for v in violations))
    count = f"{len(violations)} design-rule violations: " if len(violations) > 1 else ""
    own = len(hints) == 1 and all(v.text for v in violations)   # else each names its own
    raise ProgramLimitError(count + "; ".join(map(str, violations)),
                            hint=hints[0] if own else "Recompile for this target.")


def _check_cores(program: Program, target: Target) -> None:
    """References and placement; the limits per core and chip are rules.CORE_RULES."""
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
    home = {g: c.index for c in program.cores for g in c.groups}
    for b in program.blocks:            # a block lives with its target group's neurons
        on = [c.index for c in program.cores if b.name in c.blocks]
        _limit(on == [home.get(b.target)], f"block '{b.name}' is placed on cores {on}; it "
               f"must be on exactly the core of its target group '{b.target}' "
               f"({home.get(b.target)})", hint="Remap the program.")
    index = [c.index for c in program.cores]
    top = target.chip.chips_max * target.chip.cores_max
    for c in program.cores:
        _limit(_is_int(c.index) and 0 <= c.index < top and index.count(c.index) == 1,
               f"core index {c.index!r} is not unique in 0..{top - 1} (chips_max x cores_max)",
               hint="Remap the program.")
        _check_ints(f"core {c.index}", c, ("chip",))
        _limit(c.chip >= 0, f"core {c.index} is on chip {c.chip}; chips are numbered from 0",
               hint="Remap the program.")


def _check_sigma_delta(g: NeuronGroup) -> None:
    """Lava's SigmaDelta, Delta and Sigma (docs/sigma_delta.md §6): a known act_mode, no
    LIF state; Delta has no bias and Sigma no parameters at all. Their exponents, scaled
    threshold and bias, and the target's graded spikes are rules (rules.py)."""
    _limit(g.act_mode in ("relu", "unit"), f"group '{g.name}': unknown act_mode "
           f"'{g.act_mode}'", hint="Use 'relu' or 'unit'.")
    unused = {"delta": ("bias_mant",), "sigma": ("bias_mant",)}.get(g.model, ())
    for name in ("bias_exp", "u0", "v0", *unused):
        _limit(not np.any(np.asarray(getattr(g, name))), f"group '{g.name}': a {g.model} "
               f"group has no {name}; it must be 0", hint="Rebuild the program image.")
    _limit(g.du == 0 and g.dv == 0 and g.reset_interval == 0, f"group '{g.name}': a "
           "sigma-delta group has no du, dv or reset; they must be 0",
           hint="Rebuild the program image.")
    _limit(g.model != "sigma" or (g.vth == 0 and g.spike_exp == g.state_exp == 0 and
                                  not g.cum_error),
           f"group '{g.name}': a sigma group (a running sum) has no vth, exponents or "
           "cum_error; they must be 0", hint="Rebuild the program image.")
