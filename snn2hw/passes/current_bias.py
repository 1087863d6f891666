"""Current biases, exactly: a constant input to a current-based neuron's current.

An Affine bias ``b`` in front of a CubaLIF/CubaLI is part of its input ``I``, so the
model filters it like the spikes: ``i += a_syn*(-i + w_in*(W s + b))``, and it reaches
``v`` over ``tau_syn``. Loihi adds its bias to ``v``, after the filter, so that bias
is exact only for neurons whose ``u`` forgets (LIF, IF). For CubaLIF the exact lowering
is a constant input through the same synapses: a one-neuron population that fires at
every step (its bias exceeds its threshold; it has no input) projects onto the
population with weights ``b``. The core then adds ``gain*b`` to ``u`` at every step,
as the model does, and those weights are quantised with the population's others (the
only error is their rounding).

Timing: the reference has the bias from its step 0; a population ``o`` hops behind the
reference must receive it from hardware step ``o``, so the source fires first at step
``o - 1``. There is one source per distinct offset, placed at offset ``o - 1`` (quantise
solves its initial voltage so that it starts firing exactly then): no synaptic delay.

``--approximate cuba-bias`` keeps the old steady-state lowering (the bias added to ``v``
as ``gain*b/a_syn``; wrong during the first ``tau_syn`` steps). It saves the source
neuron and one synapse per biased neuron, and is the way out where this lowering cannot
apply: a population with no feed-forward input (offset 0: nothing can arrive at step 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import UnsupportedError
from snn2hw.passes.bounds import Stats
from snn2hw.passes.discretise import Dynamics
from snn2hw.passes.hwmodel import HwBlock, HwNet
from snn2hw.passes.integers import grid, quantise_block
from snn2hw.passes.structure import Projection, Structure

PREFIX = "#bias@"
FINE = "+fine"


def is_source(population: str) -> bool:
    """True for a population this pass made (not a node of the model)."""
    return population.startswith(PREFIX)


def source_dynamics(f: LoihiLif = LAVA) -> Dynamics:
    """An always-on neuron: no leak, bias 2 over threshold 1, so it fires at every step
    (u forgets: du = du_forget of ``f``, the target's family record)."""
    one = np.ones(1)
    return Dynamics("lif", np.array([f.du_forget]), np.zeros(1, dtype=np.int64), one,
                    2.0 * one, one, False)


def _biased(structure: Structure, dyns: dict[str, Dynamics]) -> list[str]:
    return [pop for pop, dyn in dyns.items() if dyn.cuba and
            any(np.any(p.bias != 0) for p in structure.into(pop))]


def _source_for(structure: Structure, pop: str) -> str:
    offset = structure.offsets[pop]
    if offset < 1:
        raise UnsupportedError(
            f"'{pop}' has a bias on its input current but no feed-forward input, so no "
            "always-on source can reach it at its first step", node=pop,
            hint="Use --approximate cuba-bias (the bias added to the voltage: exact once the "
                 "current settles, different during its first tau_syn).")
    name = f"{PREFIX}{offset - 1}"
    if name in structure.shapes and not is_source(name):
        raise UnsupportedError(f"the model has a node named '{name}', a name snn2hw uses for "
                               "bias sources", node=name, hint="Rename that node.")
    return name


def lower(structure: Structure, dyns: dict[str, Dynamics], stats: dict[str, Stats] | None,
          approximations: tuple[str, ...] = (), f: LoihiLif = LAVA
          ) -> tuple[Structure, dict[str, Dynamics], dict[str, Stats] | None]:
    """Move every current bias of a CubaLIF/CubaLI onto a projection from an always-on
    source population; returns the new structure, dynamics and (adjusted) statistics."""
    targets = [] if "cuba-bias" in approximations else _biased(structure, dyns)
    if not targets:
        return structure, dyns, stats
    projections: list[Projection] = []
    for p in structure.projections:
        if p.target in targets:
            p = dataclasses.replace(p, bias=np.zeros_like(p.bias))
        projections.append(p)
    sources: dict[str, int] = {}
    new_stats = dict(stats) if stats is not None else None
    for pop in targets:
        src = _source_for(structure, pop)
        sources[src] = structure.offsets[pop] - 1
        b = sum((p.bias for p in structure.into(pop)), np.zeros(structure.size(pop)))
        projections.append(Projection(src, pop, b[:, None].astype(float),
                                      np.zeros(b.size), None, (), False, 0))
        if new_stats is not None and pop in new_stats:
            new_stats[pop] = _with_bias(new_stats[pop], dyns[pop].gain * b)
    inputs = [p for p in structure.populations if p not in dyns]
    neurons = [p for p in structure.populations if p in dyns]
    out = Structure({**structure.shapes, **{s: (1,) for s in sources}},
                    tuple(inputs + sorted(sources) + neurons), tuple(projections),
                    {**structure.offsets, **sources}, dict(structure.outputs))
    return out, {**dyns, **{s: source_dynamics(f) for s in sources}}, new_stats


def _with_bias(st: Stats, g: np.ndarray) -> Stats:
    """Observed input sums did not include the bias; the source adds ``g`` at every step."""
    return Stats(st.input_pos + np.clip(g, 0, None), st.input_neg + np.clip(-g, 0, None),
                 st.v_max)


def _residual(net: HwNet, b: HwBlock, structure: Structure, dyns: dict[str, Dynamics],
              how: str, f: LoihiLif) -> HwBlock | None:
    """The part of bias block ``b`` its exponent rounded away, as a block at exponent 0
    from the fine source (None when ``b`` is already at exponent 0 or exact)."""
    e = b.weight_exp + grid(b.sign_mode, b.num_weight_bits, f)[2]
    if e <= 0:
        return None
    g = net.group(b.target)
    proj = next(p for p in structure.into(g.population) if p.source == b.source)
    want = g.scale * dyns[g.population].gain[g.index] * proj.matrix[g.index, 0] / f.act_scale
    rest = want - b.effective()[:, 0]
    if np.all(np.abs(rest) < 0.5):
        return None
    w, wexp, mode, _ = quantise_block(rest[:, None] * f.act_scale / g.scale, g.scale,
                                       b.num_weight_bits, how, False, f)
    src = b.source + FINE
    return HwBlock(f"{src}->{g.population}:{g.name}", src, g.name, "dense", w, wexp,
                   b.num_weight_bits, mode, b.delay, False)


def refine(net: HwNet, structure: Structure, dyns: dict[str, Dynamics], how: str = "nearest",
           f: LoihiLif = LAVA) -> HwNet:
    """After quantise: a bias block shares one exponent over its rows, so its rounding can
    exceed u's input resolution (one a-unit, act_scale v-units per step), an error the model
    integrates at every step. A second always-on source at the same offset carries the
    residual at exponent 0, so every bias is as fine as the hardware's input."""
    extra = [r for b in net.blocks if is_source(b.source) and not b.source.endswith(FINE)
             for r in [_residual(net, b, structure, dyns, how, f)] if r is not None]
    if not extra:
        return net
    groups, layouts, shapes = list(net.groups), dict(net.layouts), dict(net.shapes)
    for src in dict.fromkeys(r.source for r in extra):
        coarse = src[:-len(FINE)]
        groups += [dataclasses.replace(g, name=src, population=src)
                   for g in net.groups_of(coarse)]
        layouts[src], shapes[src] = layouts[coarse], shapes[coarse]
    return net.with_(groups=tuple(groups), blocks=net.blocks + tuple(extra), layouts=layouts,
                     shapes=shapes)


def owners(net: Any) -> dict[str, str]:
    """Population -> the model node whose metadata holds its groups: itself, or for a
    bias source the first population it feeds."""
    out: dict[str, str] = {}
    for g in net.groups:
        if is_source(g.population):
            fed = next(b.target for b in net.blocks if b.source == g.population)
            out[g.population] = net.group(fed).population
        else:
            out[g.population] = g.population
    return out


__all__ = ["FINE", "PREFIX", "is_source", "lower", "owners", "refine", "source_dynamics"]
