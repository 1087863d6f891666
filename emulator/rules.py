"""Design rules: the one list of (program, target) rules, each a small named function that
yields violations (where, measured value, limit, the target key, a hint).

The compiler runs them on its hardware model after quantise (values) and map (cores),
and on the program it emits; the emulator runs them when it loads a program image
(validate.py). Every violation is reported, all together. A rule reads its limits from
the target's arithmetic family record (``target.numeric``) and resource tables only.

A :class:`Subject` is what the rules read: a program image's groups, blocks, ports and
per-core usage (:func:`subject`), or the compiler's groups and blocks (same field names;
``delay`` in place of ``delays``) before or after placement. One rule marks its violations
``altered``: a full-scale weight beyond the family's clip range is clipped by the hardware
(Lava's ``clip_weights``, kernels.effective_weight) rather than refused. A program image
may hold such weights, and runs as Lava runs them; the compiler never emits one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from snn2hw_emulator.program import (
    Program,
    SynapseBlock,
    is_sparse,
    synapse_mask,
    synapse_memory_bits,
)
from snn2hw_emulator.target import Target

GRADED = ("sigma_delta", "delta", "sigma")      # kernels.GRADED_MODELS (no import cycle)


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``str()`` is one line naming where, the value and the limit."""

    rule: str
    where: str
    measured: float
    limit: float
    hint: str
    key: str = ""              # the target key that sets the limit ("numeric.decay_bits")
    text: str = ""             # the one-line description; default "<measured> > <limit>"
    altered: bool = False      # the hardware alters the value (clips) instead of refusing

    def __str__(self) -> str:
        key = f" [target: {self.key}]" if self.key else ""
        if self.text:
            return self.text + key
        return (f"{self.rule} on {self.where}: {self.measured:g} > {self.limit:g}{key} "
                f"({self.hint})")


@dataclass(frozen=True)
class CoreUse:
    """Measured resources of one core (what the core rules check)."""

    index: int
    chip: int
    groups: tuple[str, ...]
    neurons: int
    memory_bits: int
    fan_in: int
    fan_out: int


@dataclass(frozen=True)
class Subject:
    groups: Sequence[Any]
    blocks: Sequence[Any]
    ports: Sequence[Any] = ()
    cores: Sequence[CoreUse] | None = None      # None: not placed yet


Rule = Callable[[Subject, Target], Iterable[Violation]]
REQUANTISE = "Requantise the model for this target."


def _v(rule: str, where: str, measured: Any, limit: Any, key: str, text: str,
       hint: str = REQUANTISE, altered: bool = False) -> Violation:
    return Violation(rule, where, float(measured), float(limit), hint, key, text, altered)


def _lif(subject: Subject) -> list[Any]:
    return [g for g in subject.groups if g.model not in GRADED]


# --------------------------------------------------------------------------- neurons


def decays_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    top = t.numeric.decay_max
    for g in _lif(s):
        if not (0 <= g.du <= top and 0 <= g.dv <= top):
            yield _v("decays", f"group '{g.name}'", max(g.du, g.dv), top, "numeric.decay_bits",
                     f"group '{g.name}': du={g.du}, dv={g.dv} outside 0..{top}")


def threshold_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    top = t.numeric.vth_max
    for g in _lif(s):
        if not 0 <= g.vth <= top:
            yield _v("threshold", f"group '{g.name}'", g.vth, top, "numeric.vth_mant_bits",
                     f"group '{g.name}': vth={g.vth} outside 0..{top}")


def bias_mantissa_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    n = t.numeric
    for g in _lif(s):
        worst = int(np.abs(np.asarray(g.bias_mant, np.int64)).max(initial=0))
        if worst > n.bias_mant_max:
            yield _v("bias mantissa", f"group '{g.name}'", worst, n.bias_mant_max,
                     "numeric.bias_mant_bits", f"group '{g.name}': |bias_mant| up to {worst} "
                     f"exceeds {n.bias_mant_max} ({n.bias_mant_bits}-bit mantissa)")


def bias_exponent_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    top = t.numeric.bias_exp_max
    for g in _lif(s):
        e = np.asarray(g.bias_exp, np.int64)
        if e.size and (e.min() < 0 or e.max() > top):
            yield _v("bias exponent", f"group '{g.name}'", e.max(), top, "numeric.bias_exp_max",
                     f"group '{g.name}': bias_exp outside 0..{top}")


def initial_state_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    n = t.numeric
    for g in _lif(s):
        for name in ("u0", "v0"):
            arr = np.abs(np.asarray(getattr(g, name, 0), np.int64))
            if arr.size and arr.max() >= n.state_half:
                yield _v("initial state", f"group '{g.name}'", arr.max(), n.state_half - 1,
                         "numeric.state_bits", f"group '{g.name}': initial {name[0]} outside "
                         f"the {n.state_bits}-bit state")


def graded_groups_need_graded_spikes(s: Subject, t: Target) -> Iterator[Violation]:
    if t.numeric.message_bits_max > 0:
        return
    for g in s.groups:
        if g.model in GRADED:
            yield _v("graded spikes", f"group '{g.name}'", 1, 0, "numeric.message_bits_max",
                     f"group '{g.name}' is a sigma-delta group, but the target has no graded "
                     "spikes (message_bits_max = 0)",
                     "Compile sigma-delta networks for loihi2.")


def sigma_delta_exponents(s: Subject, t: Target) -> Iterator[Violation]:
    n = t.numeric
    for g in s.groups:
        if g.model not in GRADED:
            continue
        for name in ("spike_exp", "state_exp"):
            value = getattr(g, name)
            if not 0 <= value <= n.sd_exp_max:
                yield _v("sigma-delta exponent", f"group '{g.name}'", value, n.sd_exp_max,
                         "", f"group '{g.name}': {name}={value} outside 0..{n.sd_exp_max} "
                         f"({n.sd_exp_bits}-bit)")


def sigma_delta_scaled_in_state(s: Subject, t: Target) -> Iterator[Violation]:
    """SigmaDelta scales vth and the bias by 2^(spike_exp + state_exp) into its state."""
    n = t.numeric
    for g in s.groups:
        if g.model not in GRADED or not (0 <= g.spike_exp <= n.sd_exp_max and
                                         0 <= g.state_exp <= n.sd_exp_max):
            continue
        k = g.spike_exp + g.state_exp
        if not (0 <= g.vth and g.vth << k < n.state_half):
            yield _v("sigma-delta threshold", f"group '{g.name}'", g.vth, n.state_half >> k,
                     "numeric.state_bits", f"group '{g.name}': vth={g.vth} must be >= 0 and "
                     f"vth << {k} below 2^{n.state_bits - 1} (the {n.state_bits}-bit state)")
        worst = int(np.abs(np.asarray(g.bias_mant, np.int64)).max(initial=0)) << k
        if worst >= n.state_half:
            yield _v("sigma-delta bias", f"group '{g.name}'", worst, n.state_half - 1,
                     "numeric.state_bits", f"group '{g.name}': |bias| << {k} up to {worst} "
                     f"exceeds the {n.state_bits}-bit state")


# --------------------------------------------------------------------------- synapses


def _stored(b: Any) -> np.ndarray:
    """The stored full-scale values of a block (a codebook block's table)."""
    if getattr(b, "codebook", None) is not None:
        return np.asarray(b.codebook, np.int64)
    return np.asarray(b.weights.data if is_sparse(b.weights) else b.weights, np.int64)


def weights_in_word(s: Subject, t: Target) -> Iterator[Violation]:
    n = t.numeric
    for b in s.blocks:
        w = _stored(b)
        if w.size and np.abs(w).max() > n.weight_word_max:
            what = "codebook values" if getattr(b, "codebook", None) is not None else "weights"
            yield _v("weight word", f"block '{b.name}'", np.abs(w).max(), n.weight_word_max,
                     "", f"block '{b.name}': {what} outside the {n.weight_word_bits}-bit range"
                     + (" (the limit of full-scale weights)" if what != "weights" else ""))


def weights_in_full_scale(s: Subject, t: Target) -> Iterator[Violation]:
    """Full-scale weights beyond weight_bits_max bits + sign: the hardware clips them
    (``altered``; Lava's clip_weights). Convolutions are never clipped (Lava's Conv)."""
    n = t.numeric
    for b in s.blocks:
        w = _stored(b)
        if b.kind == "conv" or not w.size:
            continue
        lo, hi = int(w.min()), int(w.max())
        if lo < -n.weight_bound or hi > n.weight_max:
            yield _v("full-scale weights", f"block '{b.name}'", max(hi, -lo), n.weight_max,
                     "numeric.weight_bits_max", f"block '{b.name}': weights {lo}..{hi} outside "
                     f"the {n.weight_bits_max}-bit full-scale range {-n.weight_bound}.."
                     f"{n.weight_max}, which the hardware clips", altered=True)


def weight_exponent_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    n = t.numeric
    for b in s.blocks:
        if not n.weight_exp_min <= b.weight_exp <= n.weight_exp_max:
            yield _v("weight exponent", f"block '{b.name}'", b.weight_exp, n.weight_exp_max,
                     "numeric.weight_exp_min", f"block '{b.name}': weight_exp={b.weight_exp} "
                     f"outside {n.weight_exp_min}..{n.weight_exp_max}")


def weight_bits_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    top = t.numeric.weight_bits_max
    for b in s.blocks:
        if not 1 <= b.num_weight_bits <= top:
            yield _v("weight bits", f"block '{b.name}'", b.num_weight_bits, top,
                     "numeric.weight_bits_max", f"block '{b.name}': num_weight_bits="
                     f"{b.num_weight_bits} outside 1..{top}")


def message_bits_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    top = t.numeric.message_bits_max
    for p in s.ports:
        if not 0 <= p.message_bits <= top:
            yield _v("message bits", f"port '{p.name}'", p.message_bits, top,
                     "numeric.message_bits_max",
                     f"port '{p.name}': message_bits={p.message_bits} exceeds {top}")
    for b in s.blocks:
        if not 0 <= b.num_message_bits <= top:
            yield _v("message bits", f"block '{b.name}'", b.num_message_bits, top,
                     "numeric.message_bits_max", f"block '{b.name}': num_message_bits="
                     f"{b.num_message_bits} exceeds {top}", "Use binary spikes on this target.")


def delays_in_range(s: Subject, t: Target) -> Iterator[Violation]:
    top = t.numeric.delay_max
    for b in s.blocks:
        d = np.asarray(b.delays if b.kind == "delay_dense" and b.delays is not None
                       else getattr(b, "delay", 0), np.int64)
        if d.size and (d.min() < 0 or d.max() > top):
            yield _v("delays", f"block '{b.name}'", d.max(), top, "numeric.delay_max",
                     f"block '{b.name}': delays must match the weights and lie in 0..{top}",
                     "Give all paths into a layer the same number of hops.")


# --------------------------------------------------------------------------- cores


def _where(c: CoreUse) -> str:
    return f"core {c.index} ({', '.join(c.groups)})"


def neurons_per_core(s: Subject, t: Target) -> Iterator[Violation]:
    for c in s.cores or ():
        if c.neurons > t.core.neurons_max:
            yield _v("neurons per core", _where(c), c.neurons, t.core.neurons_max,
                     "core.neurons_max", "", "this group could not be cut into parts that "
                     "fit; use smaller layers or a target with larger cores")


def synapse_memory_per_core(s: Subject, t: Target) -> Iterator[Violation]:
    for c in s.cores or ():
        if c.memory_bits > t.core.synapse_memory_bits:
            yield _v("synaptic memory bits per core", _where(c), c.memory_bits,
                     t.core.synapse_memory_bits, "core.synapse_memory_bits", "",
                     "use fewer weight bits (--weight-bits), --share K, or sparser weights")


def fan_in_per_core(s: Subject, t: Target) -> Iterator[Violation]:
    for c in s.cores or ():
        if c.fan_in > t.core.fan_in_axons_max:
            yield _v("fan-in axons per core", _where(c), c.fan_in, t.core.fan_in_axons_max,
                     "core.fan_in_axons_max", "", "a neuron cannot take input from that many "
                     "sources on this target; prune its inputs or add an intermediate layer")


def fan_out_per_core(s: Subject, t: Target) -> Iterator[Violation]:
    for c in s.cores or ():
        if c.fan_out > t.core.fan_out_axons_max:
            yield _v("fan-out axons per core", _where(c), c.fan_out, t.core.fan_out_axons_max,
                     "core.fan_out_axons_max", "",
                     "fewer destination cores per neuron: make the next layers smaller")


def chips_per_system(s: Subject, t: Target) -> Iterator[Violation]:
    if not s.cores:
        return
    chips = max(len({c.chip for c in s.cores}), max(c.chip for c in s.cores) + 1)
    if chips > t.chip.chips_max:
        yield _v("chips", f"the system ({len(s.cores)} cores)", chips, t.chip.chips_max,
                 "chip.chips_max", "",
                 "the network is larger than the largest system of this target")


VALUE_RULES: tuple[Rule, ...] = (
    decays_in_range, threshold_in_range, bias_mantissa_in_range, bias_exponent_in_range,
    initial_state_in_range, graded_groups_need_graded_spikes, sigma_delta_exponents,
    sigma_delta_scaled_in_state, weights_in_word, weights_in_full_scale,
    weight_exponent_in_range, weight_bits_in_range, message_bits_in_range, delays_in_range)
CORE_RULES: tuple[Rule, ...] = (neurons_per_core, synapse_memory_per_core, fan_in_per_core,
                                fan_out_per_core, chips_per_system)
#: Every (program, target) rule, in the order violations are reported.
RULES: tuple[Rule, ...] = VALUE_RULES + CORE_RULES


def check(subject: Subject, target: Target, rules: Sequence[Rule] = RULES) -> list[Violation]:
    """Every violation of ``rules`` (all of them, not the first)."""
    return [v for rule in rules for v in rule(subject, target)]


# --------------------------------------------------------------------------- a program


def _present_columns(block: SynapseBlock, n_source: int) -> np.ndarray:
    """Source neurons with at least one synapse in the block (conv: all of them)."""
    if block.kind == "conv":
        return np.ones(n_source, dtype=bool)
    mask = synapse_mask(block)
    if is_sparse(mask):
        return np.bincount(mask.indices[mask.data], minlength=n_source) > 0
    return np.asarray(mask).any(axis=0)


def usage(program: Program) -> list[CoreUse]:
    """Measured resources per core of a program image: neurons, synaptic memory bits of
    the blocks on it (program.synapse_memory_bits), fan-in (distinct source neurons with a
    synapse into it) and fan-out (per neuron on it, the other cores it has a synapse on).
    A block no core lists sits on its target group's core."""
    group_core = {g: c.index for c in program.cores for g in c.groups}
    listed = {b: c.index for c in program.cores for b in c.blocks}
    sizes = {p.name: p.size for p in program.ports} | {g.name: g.size for g in program.groups}
    groups = {g.name: g for g in program.groups}
    reach: dict[tuple[str, int], np.ndarray] = {}    # (source, core) -> its neurons reaching it
    bits: dict[int, int] = {}
    for b in program.blocks:
        core = listed.get(b.name, group_core.get(b.target, -1))
        cols = _present_columns(b, sizes[b.source])
        key = (b.source, core)
        reach[key] = reach[key] | cols if key in reach else cols
        bits[core] = bits.get(core, 0) + synapse_memory_bits(b)
    out = []
    for c in program.cores:
        fan_in = sum(int(m.sum()) for (src, core), m in reach.items() if core == c.index)
        fan_out = sum(int(m.sum()) for (src, core), m in reach.items()
                      if src in c.groups and core != c.index)
        out.append(CoreUse(c.index, c.chip, tuple(c.groups),
                           sum(groups[g].size for g in c.groups if g in groups),
                           bits.get(c.index, 0), fan_in, fan_out))
    return out


def subject(program: Program) -> Subject:
    """A program image as the rules read it."""
    return Subject(program.groups, program.blocks, program.ports, usage(program))


__all__ = ["CORE_RULES", "RULES", "VALUE_RULES", "CoreUse", "Rule", "Subject", "Violation",
           "check", "subject", "usage"]
