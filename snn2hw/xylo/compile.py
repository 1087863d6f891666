"""Compile a NIR graph for a Xylo target (family ``xylo-iaf``): one straight list of steps
(:data:`PIPELINE`), run by the same pass manager as the Loihi path (:mod:`snn2hw.pipeline`:
verifiers, ``--verify-each``, ``--dump-ir``), through Xylo's own levels after the shared
Graph level (:mod:`snn2hw.xylo.levels` says why they are its own):

    lower       structure (passes/structure.py, as the Loihi path), each population as
                Xylo IAF neurons (dashes, gains, biases, thresholds), every design rule
                (rules.py, dynamics.py, snn2hw_emulator.xylo_rules) on the model and its
                float Xylo network: all violations in one error
    calibrate   optional: the float reference's |v| on data bounds each population's scale
    quantise    8-bit weights with one shift per matrix, 16-bit thresholds, 8-bit biases
    emit        the XyloProgram (checked again by the emulator's validation)

``snn2hw.compiler.compile`` calls :func:`compile` for a Xylo target.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from snn2hw_emulator import xylo_rules
from snn2hw_emulator.rules import Violation
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw import __version__, ir
from snn2hw.errors import DesignRuleError, UnsupportedError, UserInputError
from snn2hw.iomap import IO_KEY, XyloIoMap, XyloOutput, XyloPopulation
from snn2hw.levels import Context
from snn2hw.options import for_family
from snn2hw.passes import structure as structure_pass
from snn2hw.pipeline import GRAPH, Step
from snn2hw.pipeline import run as run_steps
from snn2hw.targets import Target
from snn2hw.xylo import dynamics as dyn_mod
from snn2hw.xylo import rules
from snn2hw.xylo.levels import (
    XYLO_INTEGERS,
    XYLO_NET,
    XYLO_PROGRAM,
    Integers,
    Lowered,
    XyloEmitted,
)
from snn2hw.xylo.lower import XyloNet, lower
from snn2hw.xylo.quantise import CALIBRATION_MARGIN, Quantised, quantise


@dataclass
class XyloCompiled:
    program: XyloProgram
    net: XyloNet
    graph: ir.Graph
    target: Target
    options: Any
    timings: dict[str, float]
    quantised: Quantised
    warnings: list[str] = field(default_factory=list)
    passes: tuple[str, ...] = ()

    @property
    def report(self) -> dict[str, Any]:
        p = self.program
        return {"target": self.target.name, "family": self.target.family,
                "options": self.options.record(), "passes": list(self.passes),
                "timings_s": self.timings, "cores": 1, "chips": 1,
                "neurons": p.n_hidden + p.n_out, "inputs": p.n_in, "hidden": p.n_hidden,
                "outputs": p.n_out,
                "recurrent_weights": int(np.count_nonzero(p.weights_rec)),
                "layers": self.quantised.report["populations"],
                "weight_shifts": self.quantised.shifts,
                "latency_steps": int(max(self.net.offsets.values(), default=0)),
                "warnings": self.warnings}


def _refuse(violations: list[Violation], target: Target) -> None:
    if violations:
        raise DesignRuleError(
            f"the model does not fit target '{target.name}' ({len(violations)} design rule "
            "violation(s)): " + " | ".join(xylo_rules.describe(v) for v in violations))


def _unsupported_options(options: Any) -> None:
    bad = [(name, value) for name, value in (("share", options.share), ("netx", options.netx),
                                             ("scale_groups", options.scale_groups - 1),
                                             ("input_bits", getattr(options, "input_bits", None)))
           if value]
    if options.weight_bits not in (None, 8):
        bad.append(("weight_bits", options.weight_bits))
    if bad:
        name, value = bad[0]
        raise UserInputError(f"option {name}={value!r} has no meaning on a Xylo target",
                             hint="Xylo weights are 8 bits with one shift per matrix; "
                                  "compile without it.")


def _structure(graph: ir.Graph) -> tuple[Any, list[Violation]]:
    try:
        return structure_pass.analyse(graph), []
    except UnsupportedError as exc:
        return None, [Violation("model_structure", exc.node or "graph", 0, 0,
                                "change the model as the message says", "", exc.message)]


def _dynamics(graph: ir.Graph, st: Any, opt: Any, target: Target
              ) -> tuple[dict[str, dyn_mod.Dyn], list[Violation]]:
    out, bad = {}, []
    inputs, outputs, rec = set(graph.inputs()), set(st.outputs.values()), target.numeric
    for pop in st.populations:
        if pop in inputs:
            continue
        n = st.size(pop)
        bias = sum((p.bias for p in st.into(pop)), np.zeros(n))
        cap = rec.output_spikes_max if pop in outputs else rec.hidden_spikes_max
        d, v = dyn_mod.dynamics(pop, graph.nodes[pop], n, bias, opt, rec.dash_max, cap)
        bad += v
        if d is not None:
            out[pop] = d
    return out, bad


def _calibrate(graph: ir.Graph, net: XyloNet, data: np.ndarray, dt: float
               ) -> tuple[dict[str, float], float]:
    """Per population the float reference's largest |v| on ``data`` (times the margin),
    and the largest input event count per channel and step."""
    from snn2hw.reference import simulate

    res = simulate(graph, np.asarray(data, dtype=float), dt=dt, record=("states",))
    v_max = {p: float(np.abs(res.states[p]["v"]).max(initial=0.0)) * CALIBRATION_MARGIN
             for p in (*net.hidden, net.output)}
    return v_max, float(np.max(data, initial=1.0))


def _io(net: XyloNet) -> XyloIoMap:
    """How model-shaped arrays map onto the program: the input channels (NIR order), and
    per population its group ("hidden"/"output"), hardware rows and offset."""
    pops = {p: XyloPopulation("output" if p == net.output else "hidden",
                              tuple(net.rows(p).tolist()), net.offsets[p])
            for p in (*net.hidden, net.output)}
    return XyloIoMap(dt=net.dt, ports={net.input: tuple(range(net.sizes[net.input]))},
                     outputs={net.output_node: XyloOutput(net.output, False,
                                                          net.offsets[net.output])},
                     populations=pops, latency=int(max(net.offsets.values(), default=0)))


# --------------------------------------------------------------------------- the steps


def step_lower(graph: ir.Graph, ctx: Context) -> Lowered:
    """Graph -> xylo-net: structure, dynamics and every design rule, all violations in one
    error; the float Xylo network."""
    target, options = ctx.target, ctx.options
    opt = dyn_mod.options(graph, options.dt)
    st, violations = _structure(graph)
    dyn, bad = _dynamics(graph, st, opt, target) if st is not None else ({}, [])
    model = rules.Model(graph, st, dyn, tuple(options.approximations))
    violations += bad + rules.check(model, target)
    net = None
    if not violations and model.input is not None and model.output is not None:
        net = lower(st, dyn, model.input, next(iter(st.outputs)), opt.dt)
        violations += xylo_rules.check(net, target)   # on the float weights' pattern
    _refuse(violations, target)
    notes = tuple(x for d in dyn.values() for x in d.differences)
    for note in notes:
        warnings.warn(f"approximated on Xylo: {note}", stacklevel=2)
    return Lowered(graph, net, notes)


def step_calibrate(lv: Lowered, ctx: Context) -> Lowered:
    """xylo-net -> xylo-net: with data, each population's |v| and the input events per
    step on it; the events capped at what the core takes."""
    v_max, in_max = (None, 1.0)
    if ctx.calibration is not None:
        v_max, in_max = _calibrate(lv.graph, lv.net, ctx.calibration, lv.net.dt)
    in_max = min(in_max, ctx.target.numeric.input_events_max)
    return Lowered(lv.graph, lv.net, lv.notes, v_max, in_max)


def step_quantise(lv: Lowered, ctx: Context) -> Integers:
    """xylo-net -> xylo-integers: scales, weight shifts, integer arrays."""
    return Integers(lv.net, quantise(lv.net, ctx.target.numeric, lv.v_max, lv.in_max),
                    lv.notes)


def step_emit(lv: Integers, ctx: Context) -> XyloEmitted:
    """xylo-integers -> xylo-program: the XyloProgram image with its host I/O map."""
    return XyloEmitted(_emit(lv.net, lv.quantised, ctx), lv.net, lv.quantised, lv.notes)


PIPELINE: tuple[Step, ...] = (
    Step("lower", step_lower, XYLO_NET),                # structure, dynamics, design rules
    Step("calibrate", step_calibrate, XYLO_NET),        # with data: |v| per population
    Step("quantise", step_quantise, XYLO_INTEGERS),     # weights, shifts, thresholds, biases
    Step("emit", step_emit, XYLO_PROGRAM),              # the XyloProgram
)
PASSES = tuple(s.name for s in PIPELINE)


def compile(graph: ir.Graph, options: Any, target: Target,
            calibration: np.ndarray | None = None) -> XyloCompiled:
    """``graph`` compiled for the Xylo ``target``; every design rule violation is reported
    together in one DesignRuleError."""
    _unsupported_options(options)
    for_family(options, target.family)
    ctx = Context(target, options, calibration, PASSES)
    out, timings, _ = run_steps(PIPELINE, graph, GRAPH, ctx)
    return XyloCompiled(out.program, out.net, graph, target, options, timings,
                        out.quantised, list(out.notes), PASSES)


def _emit(net: XyloNet, q: Quantised, ctx: Context) -> XyloProgram:
    target = ctx.target
    record = {"options": ctx.options.record(), "passes": list(ctx.steps), "snn2hw": __version__}
    a = q.arrays
    return XyloProgram(
        target.name, target.sha256, target.toml, a["weights_in"], a["weights_rec"],
        a["weights_out"], q.shifts["weights_in"], q.shifts["weights_rec"],
        q.shifts["weights_out"], a["dash_mem"], a["dash_syn"], a["dash_mem_out"],
        a["dash_syn_out"], a["threshold"], a["threshold_out"], a["bias"], a["bias_out"],
        a["aliases"], metadata={IO_KEY: _io(net).to_json(),
                                "snn2hw.compile": json.dumps(record, default=str)})
