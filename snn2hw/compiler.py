"""``compile()``: a NIR graph -> a quantised, mapped program for a target.

The compiler is one straight list of named steps per kind of network (:data:`PIPELINE`,
:data:`SIGMA_DELTA_PIPELINE`, :data:`INTEGER_PIPELINE`), each step a function from one
IR level to the next (:mod:`snn2hw.levels`: Graph -> Structure -> Dynamics or Layers ->
HwNet -> Placed -> Program). The pass manager (:mod:`snn2hw.pipeline`) verifies each
level as it is reached (after every step with ``verify_each``) and writes each level in
its own form with ``dump_ir``. Options and the step list are recorded in the program
image and the report. A Xylo target takes its own list (:mod:`snn2hw.xylo.compile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from snn2hw import ir, sdnn, steps
from snn2hw.levels import Context
from snn2hw.options import Options, for_family
from snn2hw.passes import annotations, mapping, quantise_sdnn, structure  # noqa: F401
from snn2hw.passes.hwmodel import HwNet
from snn2hw.pipeline import DYNAMICS, GRAPH, HWNET, LAYERS, PLACED, PROGRAM, STRUCTURE, Step
from snn2hw.pipeline import run as run_steps
from snn2hw.targets import Target
from snn2hw.targets import load as load_target
from snn2hw.verifiers import check_program, check_values

#: Spiking neurons (LIF, IF, CubaLIF and their readouts): a float NIR graph -> an image.
PIPELINE: tuple[Step, ...] = (
    Step("canonicalise", steps.canonicalise, STRUCTURE),    # populations, projections, delays
    Step("discretise", steps.discretise, DYNAMICS),         # ODE constants -> decays at dt
    Step("calibrate", steps.calibrate, DYNAMICS),           # with data: observed bounds
    Step("current-bias", steps.lower_current_bias, DYNAMICS),   # CuBa biases as sources
    Step("quantise", steps.quantise, HWNET),                # groups, scales, integers
    Step("share", steps.share_weights, HWNET),              # --share K: codebooks
    Step("ranges", steps.check_ranges, HWNET),              # input sum, u, v in range
    Step("map", steps.place, PLACED),                       # cores, chips, core rules
    Step("emit", steps.emit, PROGRAM),                      # the program image
    Step("cost", steps.cost, PROGRAM),                      # with data: energy, latency
)

#: A graph of sigma-delta layers (snn2hw.sdnn): no time constants; per-layer grids.
SIGMA_DELTA_PIPELINE: tuple[Step, ...] = (
    Step("canonicalise", steps.canonicalise, STRUCTURE),    # populations, projections
    Step("layers", steps.layers, LAYERS),                   # bounds: stored or worst case
    Step("calibrate", steps.calibrate_layers, LAYERS),      # with data: observed bounds
    Step("quantise", steps.quantise_layers, HWNET),         # grids, weights, payload shifts
    *PIPELINE[-5:],                                         # share, ranges, map, emit, cost
)

#: A source already on the target's integer grid (a netx .net file, an annotated graph):
#: nothing requantised.
INTEGER_PIPELINE: tuple[Step, ...] = (
    Step("ranges", steps.check_ranges_integer, HWNET),      # information; one-step overflow
    *PIPELINE[-3:-1],                                       # map, emit (no data: no cost)
)


@dataclass
class Compiled:
    program: Any
    net: HwNet
    graph: ir.Graph
    target: Target
    options: Options
    timings: dict[str, float]
    passes: tuple[str, ...] = tuple(s.name for s in PIPELINE)

    @property
    def report(self) -> dict[str, Any]:
        return report(self)


def compile(graph: ir.Graph, options: Options | None = None, *,
            calibration: np.ndarray | None = None) -> Compiled:
    """Compile ``graph`` for ``options.target``; raises a Snn2hwError naming what failed.
    A graph that ``compile`` annotated for this target (``OUT/quantised.nir``) keeps its
    integers: only ranges, map and emit run on them (:func:`compile_integer`)."""
    options = options or Options()
    target = load_target(options.target)
    graded = bool(sdnn.check_graph(graph))
    if graded:                        # first: a sigma-delta graph names its own need
        quantise_sdnn.check_target(graph, target)
    if target.family == "xylo-iaf":              # the Xylo path: snn2hw/xylo/compile.py
        from snn2hw.xylo import compile as xylo

        return xylo.compile(graph, options, target, calibration)
    for_family(options, target.family)
    net = annotations.hwnet(graph, options.target)
    if net is not None:
        return compile_integer(net, graph, options)
    return run(SIGMA_DELTA_PIPELINE if graded else PIPELINE, graph, graph, options,
               calibration=calibration)


def compile_integer(net: HwNet, graph: ir.Graph, options: Options | None = None) -> Compiled:
    """Map and emit a hardware model that is already in the target's integers (a netx
    file, ``backends/netx_hw.py``): the same integers come out. The range check reports
    worst-case bounds as information and refuses only what overflows in a single step."""
    return run(INTEGER_PIPELINE, net, graph, options or Options())


def run(pipeline: tuple[Step, ...], source: Any, graph: ir.Graph, options: Options, *,
        calibration: np.ndarray | None = None) -> Compiled:
    """Run ``pipeline`` from ``source`` (the graph itself, or a HwNet in integers for
    ``graph``) to a program; the placed model annotates ``graph`` (``Compiled.graph``)."""
    ctx = Context(load_target(options.target), options, calibration,
                  tuple(s.name for s in pipeline))
    start = GRAPH if source is graph else HWNET
    out, timings, caught = run_steps(pipeline, source, start, ctx)
    net = out.net.with_(report={**out.net.report, "warnings": caught}, stats=None)
    bits = {} if start is HWNET else dict(net.port_bits)
    return Compiled(out.program, net, annotations.annotate(graph, net, ctx.target.name, bits),
                    ctx.target, options, timings, ctx.steps)


def report(c: Compiled) -> dict[str, Any]:
    """Resource and quantisation report (JSON-ready)."""
    uses = mapping.usage(c.net, c.target)
    return {
        "target": c.target.name,
        "options": c.options.record(),
        "passes": list(c.passes),
        "timings_s": c.timings,
        "cores": len(uses), "chips": len({u.chip for u in uses}),
        "neurons": int(sum(g.size for g in c.net.groups)),
        "synapse_memory_bits": int(sum(u.memory_bits for u in uses)),
        "per_core": [dict(vars(u), groups=list(u.groups)) for u in uses],
        "mapping_layers": c.net.report.get("mapping", {}).get("layers", []),
        "layers": c.net.report.get("quantise", {}),
        "ranges": c.net.report.get("ranges", {}),
        "share": c.net.report.get("share"),
        "warnings": c.net.report.get("warnings", []),
        "cost": c.net.report.get("cost"),
        "latency_steps": int(max((g.offset for g in c.net.groups), default=0)),
    }


__all__ = [
    "INTEGER_PIPELINE",
    "PIPELINE",
    "SIGMA_DELTA_PIPELINE",
    "Compiled",
    "Options",
    "check_program",
    "check_values",
    "compile",
    "compile_integer",
    "report",
    "run",
]
