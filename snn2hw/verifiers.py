"""One verifier per IR level (:mod:`snn2hw.levels`): each checks what the level promises
and raises, naming every problem at once. The pass manager runs a level's verifier when a
pass first produces that level, and with ``--verify-each`` after every pass.

Graph: the checker (:mod:`snn2hw.checker`). Structure, Dynamics, Layers: sizes and
references agree (:class:`snn2hw.errors.IRError`: a compiler bug). HwNet: the same for
groups and blocks, and every integer against the target's value rules (the emulator's,
:mod:`snn2hw_emulator.rules`). Placed: every group on a core and a chip, and the core
rules on the mapper's measure. Program: every design rule, as the emulator checks an
image when it loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from snn2hw_emulator import rules

from snn2hw import checker, ir
from snn2hw.errors import DesignRuleError, IRError
from snn2hw.levels import Context, Discrete, Emitted, Layers, Structured
from snn2hw.passes import mapping
from snn2hw.passes.hwmodel import HwNet
from snn2hw.targets import Target


def _raise(level: str, problems: list[str]) -> None:
    if problems:
        raise IRError(f"the {level} level is inconsistent: " + "; ".join(problems),
                      hint="This is a compiler bug; report it with the model.")


# --------------------------------------------------------------------------- float levels


def graph(g: ir.Graph, ctx: Context | None = None) -> None:
    checker.validate(g)


def _projections(s: Structured) -> Iterator[str]:
    st = s.structure
    pops = set(st.populations)
    for p in st.projections:
        if p.source not in pops or p.target not in pops or p.target in s.port_bits:
            yield f"projection {p.name} joins no two populations"
            continue
        want = (st.size(p.target), st.size(p.source))
        held = p.matrix if p.matrix is not None else p.sparse
        if held is not None and held.shape != want:
            yield f"projection {p.name} is {held.shape[0]}x{held.shape[1]}, not {want[0]}x{want[1]}"
        if held is None and (p.conv is None or tuple(p.in_shape) != st.shapes[p.source]):
            yield f"projection {p.name} holds no map of its source's shape"
        if np.shape(p.bias) != (want[0],):
            yield f"projection {p.name} has {np.size(p.bias)} biases for {want[0]} neurons"
        delay = st.offsets[p.target] - st.offsets[p.source] - (0 if p.recurrent else 1)
        if p.delay != delay or p.delay < 0:
            yield f"projection {p.name} has delay {p.delay}; the offsets give {delay}"


def structure(s: Structured, ctx: Context | None = None) -> None:
    st = s.structure
    problems = [f"population '{p}' has no shape or offset" for p in st.populations
                if p not in st.shapes or p not in st.offsets]
    if not problems:
        problems += list(_projections(s))
    problems += [f"output '{o}' reads '{p}', which is no population"
                 for o, p in st.outputs.items() if p not in st.shapes]
    problems += [f"port '{p}' has {b} payload bits" for p, b in s.port_bits.items()
                 if p not in st.populations or b < 0]
    _raise("Structure", problems)


def _neurons(d: Discrete) -> list[str]:
    return [p for p in d.structure.populations if p not in d.port_bits]


def _dynamics_of(pop: str, dyn: Any, n: int, decay_max: int) -> Iterator[str]:
    arrays = ("du", "dv", "gain", "bias", "threshold")
    if any(np.shape(getattr(dyn, k)) != (n,) for k in arrays):
        yield f"'{pop}' has dynamics of the wrong size for its {n} neurons"
        return
    for k in ("du", "dv"):
        v = getattr(dyn, k)
        if v.dtype.kind not in "iu" or v.min(initial=0) < 0 or v.max(initial=0) > decay_max:
            yield f"'{pop}': {k} outside 0..{decay_max}"
    if not (np.all(np.isfinite(dyn.gain)) and np.all(np.isfinite(dyn.bias))):
        yield f"'{pop}': gain or bias not finite"
    lif = dyn.model == "lif"
    if dyn.model not in ("lif", "readout") or (lif and not np.all(
            np.isfinite(dyn.threshold) & (dyn.threshold > 0))) or (
            not lif and not np.all(np.isinf(dyn.threshold))):
        yield f"'{pop}': a {dyn.model} with thresholds {dyn.threshold.min(initial=0):g}.."


def dynamics(d: Discrete, ctx: Context) -> None:
    structure(d, ctx)
    pops = _neurons(d)
    problems = [] if set(pops) == set(d.dynamics) else [
        f"dynamics for {sorted(d.dynamics)}, populations {sorted(pops)}"]
    f = ctx.target.numeric
    for pop in pops:
        if pop in d.dynamics:
            problems += list(_dynamics_of(pop, d.dynamics[pop], d.structure.size(pop),
                                          f.decay_max))
    for pop, st in (d.stats or {}).items():
        n = d.structure.size(pop) if pop in d.structure.shapes else -1
        if any(a is not None and (np.shape(a) != (n,) or not np.all(a >= 0))
               for a in (st.input_pos, st.input_neg, st.v_max)):
            problems.append(f"'{pop}': statistics of the wrong size or sign")
    _raise("Dynamics", problems)


def layers(lv: Layers, ctx: Context | None = None) -> None:
    structure(lv, ctx)
    pops = _neurons(lv)
    problems = [] if set(pops) == set(lv.bounds) else [
        f"bounds for {sorted(lv.bounds)}, layers {sorted(pops)}"]
    problems += [f"'{p}': bound {k} = {v}" for p, b in lv.bounds.items()
                 for k, v in vars(b).items() if not (np.isfinite(v) and v >= 0)]
    _raise("Layers", problems)


# --------------------------------------------------------------------------- hardware levels


def check_values(net: HwNet, target: Target) -> None:
    """Every integer of the hardware model against the target's family record: the value
    rules (snn2hw_emulator.rules.VALUE_RULES) the emulator runs on every image, all
    violations at once. A weight the hardware would clip is refused here too."""
    bad = rules.check(rules.Subject(net.groups, net.blocks), target, rules.VALUE_RULES)
    if bad:
        raise DesignRuleError("quantised values out of range for target "
                              f"'{target.name}': " + "; ".join(map(str, bad)),
                              hint="This is a compiler bug if no option forced it; report it.")


def check_program(program: Any, target: Target) -> None:
    """The emitted program against every design rule, as the emulator checks it on load
    (so that nothing compiled is refused when loaded), clipped weights included."""
    bad = rules.check(rules.subject(program), target)
    if bad:
        raise DesignRuleError(f"the program does not fit target '{target.name}': "
                              + "; ".join(map(str, bad)), hint="Each item names the limit "
                              "and a way out.")


def _block_shape(net: HwNet, b: Any, rows: int) -> str | None:
    if b.kind == "conv":
        return None if np.ndim(b.weights) == 4 else f"block {b.name}: a kernel of rank " \
            f"{np.ndim(b.weights)}"
    n_src = int(np.prod(net.shapes[b.source]))
    if b.weights.shape != (rows, n_src):
        return f"block {b.name} is {b.weights.shape}, not {rows}x{n_src}"
    if b.codebook is not None and b.codebook.shape[0] not in (1, rows):
        return f"block {b.name} has {b.codebook.shape[0]} codebooks for {rows} rows"
    return None


def _groups(net: HwNet) -> Iterator[str]:
    names = [g.name for g in net.groups]
    if len(set(names)) != len(names):
        yield "two groups share a name"
    for pop in dict.fromkeys(g.population for g in net.groups):
        size = int(np.prod(net.shapes.get(pop, (-1,))))
        idx = np.concatenate([g.index for g in net.groups_of(pop)])
        if size < 0 or np.sort(idx).tolist() != list(range(size)):
            yield f"the groups of '{pop}' do not hold each of its {size} neurons once"
        for g in net.groups_of(pop):
            arrays = [g.bias_mant, g.bias_exp, g.v0]
            if any(np.shape(a) != (g.size,) for a in arrays):
                yield f"group {g.name}: biases or initial state not one per neuron"


def hwnet(net: HwNet, ctx: Context) -> None:
    """Groups and blocks agree in names and sizes; every integer is in range."""
    problems = list(_groups(net))
    groups = {g.name: g for g in net.groups}
    pops = {g.population for g in net.groups} | set(net.inputs)
    for b in net.blocks:
        if b.target not in groups or b.source not in pops or b.source not in net.shapes:
            problems.append(f"block {b.name} joins '{b.source}' to '{b.target}', not a "
                            "population and a group")
            continue
        bad = _block_shape(net, b, groups[b.target].size)
        problems += [bad] if bad else []
    problems += [f"output '{o}' reads '{p}', which has no group" for o, p in
                 net.outputs.items() if not net.groups_of(p)]
    _raise("HwNet", problems)
    check_values(net, ctx.target)


def placed(net: HwNet, ctx: Context) -> None:
    """A HwNet with every group on a core and a chip, within every core rule."""
    hwnet(net, ctx)
    lost = [g.name for g in net.groups if g.core < 0 or g.chip < 0]
    _raise("Placed", [f"group(s) {', '.join(lost)} on no core"] if lost else [])
    violations = mapping.check_rules(mapping.usage(net, ctx.target), ctx.target)
    if violations:
        raise DesignRuleError("; ".join(map(str, violations)))


def program(e: Emitted, ctx: Context) -> None:
    """The image's groups are the placed model's; the image keeps every design rule."""
    image = {g.name: g.size for g in e.program.groups}
    model = {g.name: g.size for g in e.net.groups}
    _raise("Program", [f"the image has groups {image}, the placed model {model}"]
           if image != model else [])
    check_program(e.program, ctx.target)


__all__ = ["check_program", "check_values", "dynamics", "graph", "hwnet", "layers", "placed",
           "program", "structure"]
