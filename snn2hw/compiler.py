"""``compile()``: a NIR graph -> a quantised, mapped program for a target.

The pipeline is one straight list of named passes (:data:`PIPELINE`). Each pass takes
and returns a :class:`State`; the pass manager validates the graph after import,
every integer after quantisation and every core after mapping (after every pass with
``verify_each``), and can dump the graph after each pass as ``.nir`` with the
hardware model in node metadata. Options and the pass list are recorded in the
program image and the report.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from snn2hw_emulator import rules

from snn2hw import checker, ir, nirio, paths, sdnn
from snn2hw.backends import image as image_backend
from snn2hw.errors import DesignRuleError, UnsupportedError, UserInputError
from snn2hw.passes import (
    annotations,
    current_bias,
    mapping,
    quantise_sdnn,
    ranges,
    scale_policy,
    share,
    structure,
)
from snn2hw.passes import discretise as disc
from snn2hw.passes import quantise as quant
from snn2hw.passes.hwmodel import HwNet, to_metadata
from snn2hw.targets import Target
from snn2hw.targets import load as load_target


@dataclass(frozen=True)
class Options:
    target: str = "loihi2"
    dt: float | None = None
    weight_bits: int | None = None          # default: the target's maximum
    share: int | None = None                # K shared values per scope
    share_scope: str = "layer"
    share_method: str = "kmeans"
    keep_conv: bool = True
    scale_groups: int = 1                   # >1: finer quantisation granularity
    netx: bool = False                      # quantise so the program exports to netx .net
    rounding: str = "nearest"
    approximations: tuple[str, ...] = ()
    allow_saturation: bool = False
    verify_each: bool = False
    dump_ir: str | None = None
    input_bits: int | None = None           # graded input ports of this many bits

    def __post_init__(self) -> None:
        """Refuse values no pass can use, naming the option (the CLI range-checks too)."""
        _whole_at_least("weight_bits", self.weight_bits, 2, "a sign and a magnitude bit; None: "
                        "the target's maximum")
        _whole_at_least("share", self.share, 1, "values per scope; None: no sharing")
        _whole_at_least("scale_groups", self.scale_groups, 1, "groups per population")
        _whole_at_least("input_bits", self.input_bits, 2, "bits of a signed payload; None: "
                        "what the graph's Input nodes declare, else binary spikes")
        dt = self.dt
        if dt is not None and (isinstance(dt, bool) or not isinstance(dt, numbers.Real)
                               or not math.isfinite(dt) or dt <= 0):
            raise UserInputError(f"Options(dt={dt!r}): dt must be a positive number of "
                                 "seconds", hint="Give the time step, e.g. dt=1e-3, or None "
                                 "for the model's own.")

    def record(self) -> dict[str, Any]:
        """The options as the program image records them (input_bits only where set, so
        binary-input programs keep their images)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()
                if not (k == "input_bits" and v is None)}


def _whole_at_least(name: str, value: object, low: int, what: str) -> None:
    if value is None and name != "scale_groups":
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise UserInputError(f"Options({name}={value!r}): {name} must be a whole number >= "
                             f"{low} ({what})", hint=f"Give {name} >= {low}.")


@dataclass
class State:
    graph: ir.Graph
    target: Target
    options: Options
    calibration: np.ndarray | None = None
    structure: structure.Structure | None = None
    dynamics: dict[str, disc.Dynamics] = field(default_factory=dict)
    stats: dict[str, quant.Stats] | None = None
    net: HwNet | None = None
    program: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    integer: bool = False                   # the source is already in the target's integers
    pipeline: tuple[str, ...] = ()
    port_bits: dict[str, int] = field(default_factory=dict)   # input -> payload bits (0: 0/1)


# --------------------------------------------------------------------------- passes


def p_canonicalise(s: State) -> State:
    """Populations and projections; timing offsets and path-evening delays; checks."""
    for bad in s.options.approximations:
        if bad not in disc.APPROXIMATIONS:
            raise UserInputError(f"unknown approximation '{bad}'",
                                 hint=f"Choose from {', '.join(disc.APPROXIMATIONS)}.")
    s.structure = structure.analyse(s.graph)
    return s


def p_discretise(s: State) -> State:
    opt = disc.options(s.graph, s.options.dt)
    s.dynamics = {pop: disc.dynamics(pop, s.graph.nodes[pop], s.structure.size(pop), opt,
                                     s.options.approximations, s.target.numeric)
                  for pop in s.structure.populations if pop not in s.graph.inputs()}
    if s.calibration is not None:
        s.stats = quant.calibrated_stats(s.structure, s.dynamics, s.graph, s.calibration, opt.dt)
    return s


def p_current_bias(s: State) -> State:
    """A CubaLIF's current bias as an always-on source through its synapses (exact)."""
    s.structure, s.dynamics, s.stats = current_bias.lower(s.structure, s.dynamics, s.stats,
                                                         s.options.approximations,
                                                         s.target.numeric)
    return s


def p_quantise(s: State) -> State:
    bits = s.options.weight_bits or s.target.numeric.weight_bits_max
    graded = {p: b for p, b in s.port_bits.items() if b}
    opts = quant.QuantOptions(bits, s.options.rounding, s.options.keep_conv,
                              s.options.approximations, s.options.scale_groups,
                              s.options.netx, tuple((p, 2 ** (b - 1)) for p, b in graded.items()))
    s.net = quant.quantise(s.structure, s.dynamics, s.target, opts, s.stats)
    s.net = current_bias.refine(s.net, s.structure, s.dynamics, s.options.rounding,
                                s.target.numeric)
    if graded:                        # graded input ports: their blocks take payloads
        s.net = s.net.with_(port_bits=dict(s.port_bits), blocks=tuple(
            dataclasses.replace(b, num_message_bits=graded.get(b.source, 0)) if b.source
            in graded else b for b in s.net.blocks))
    scale_policy.explain(s.net.report.get("quantise", {}), bits, s.stats is not None)
    return s


def p_quantise_sdnn(s: State) -> State:
    """Sigma-delta layers: per-layer integer grids, weights, bias, vth, payload shifts."""
    bits = s.options.weight_bits or s.target.numeric.weight_bits_max
    s.net = quantise_sdnn.quantise(s.graph, s.structure, s.target, weight_bits=bits,
                                   rounding=s.options.rounding, keep_conv=s.options.keep_conv,
                                   port_bits=s.port_bits, calibration=s.calibration)
    return s


def p_share(s: State) -> State:
    if s.options.share:
        s.net = share.share(s.net, s.options.share, s.options.share_scope,
                            s.options.share_method, s.target.numeric)
    return s


def p_ranges(s: State) -> State:
    s.net = ranges.check(s.net, s.target, s.stats, s.options.allow_saturation,
                         integer=s.integer)
    return s


def p_map(s: State) -> State:
    s.net = mapping.map_to_cores(s.net, s.target)
    return s


def p_emit(s: State) -> State:
    record = {"options": s.options.record(), "passes": list(s.pipeline),
              "snn2hw": __import__("snn2hw").__version__}
    s.program = image_backend.build(s.net, s.target, record=record)
    return s


PIPELINE: tuple[tuple[str, Callable[[State], State]], ...] = (
    ("canonicalise", p_canonicalise),
    ("discretise", p_discretise),
    ("current-bias", p_current_bias),
    ("quantise", p_quantise),
    ("share", p_share),
    ("ranges", p_ranges),
    ("map", p_map),
    ("emit", p_emit),
)

#: A source already on the target's integer grid (a netx .net file): nothing requantised.
INTEGER_PIPELINE = PIPELINE[-3:]
#: A graph of sigma-delta layers (snn2hw.sdnn): no time constants to discretise.
SIGMA_DELTA_PIPELINE = (PIPELINE[0], ("quantise", p_quantise_sdnn), *PIPELINE[-4:])


# --------------------------------------------------------------------------- validation


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


def _validate(name: str, s: State, every: bool) -> None:
    if name == "canonicalise" or (every and s.net is None):
        checker.validate(s.graph)
    if s.net is not None and (name == "quantise" or every):
        check_values(s.net, s.target)
    if s.net is not None and (name == "map" or (every and s.net.groups[0].core >= 0)):
        violations = mapping.check_rules(mapping.usage(s.net, s.target), s.target)
        if violations:
            raise DesignRuleError("; ".join(map(str, violations)))
    if s.program is not None:
        check_program(s.program, s.target)


def annotated_graph(s: State, pass_name: str) -> ir.Graph:
    """The graph with the hardware model so far in node metadata (for --dump-ir)."""
    meta = {**dict(s.graph.metadata), "snn2hw.pass": pass_name, "snn2hw.target": s.target.name}
    if any(s.port_bits.values()):
        meta["snn2hw.port_bits"] = {k: v for k, v in s.port_bits.items() if v}
    if s.net is None:
        return s.graph.replace(metadata=meta)
    hw = to_metadata(s.net)
    nodes = dict(s.graph.nodes)
    owner = current_bias.owners(s.net)          # a bias source is stored with what it feeds
    for pop in set(owner.values()):
        node = nodes[pop]
        mine = {"groups": {k: v for k, v in hw["groups"].items()
                           if owner[v["population"]] == pop},
                "blocks": {k: v for k, v in hw["blocks"].items()
                           if hw["groups"][v["target"]]["population"] == pop}}
        nodes[pop] = dataclasses.replace(node, metadata={**(node.metadata or {}), "snn2hw": mine})
    return s.graph.replace(nodes=nodes, metadata=meta)


# --------------------------------------------------------------------------- entry point


@dataclass
class Compiled:
    program: Any
    net: HwNet
    graph: ir.Graph
    target: Target
    options: Options
    timings: dict[str, float]
    passes: tuple[str, ...] = tuple(name for name, _ in PIPELINE)

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
    if sdnn.check_graph(graph):       # first: a sigma-delta graph names its own need
        quantise_sdnn.check_target(graph, target)
    if target.family == "xylo-iaf":              # the Xylo path: snn2hw/xylo/compile.py
        from snn2hw.xylo import compile as xylo

        return xylo.compile(graph, options, target, calibration)
    net = annotations.hwnet(graph, options.target)
    if net is not None:
        return compile_integer(net, graph, options)
    s = State(graph, target, options, calibration=calibration)
    graded = bool(sdnn.check_graph(graph))
    s.port_bits = port_bits(graph, options, s.target)
    return _run(s, SIGMA_DELTA_PIPELINE if graded else PIPELINE, calibration)


def port_bits(graph: ir.Graph, options: Options, target: Target) -> dict[str, int]:
    """Payload bits of every input port (0: binary spikes): ``options.input_bits`` for
    all, else what each Input node declares (``sdnn.PAYLOAD_BITS_KEY``). Refused in one
    line: a port narrower than its Input's payloads, or graded ports on a target
    without graded spikes."""
    declared = sdnn.input_bits(graph)
    out = {}
    for name in graph.inputs():
        bits = declared.get(name, 0) if options.input_bits is None else options.input_bits
        if bits < declared.get(name, 0):
            raise UserInputError(f"Input '{name}' carries {declared[name]}-bit payloads, "
                                 f"wider than --input-bits {bits}", node=name,
                                 hint=f"Pass --input-bits {declared[name]} or more, or "
                                      f"re-import the model with --input-bits {bits}.")
        top = target.numeric.message_bits_max
        if bits > top:
            what = "no graded spikes" if top <= 0 else f"graded spikes of up to {top} bits"
            raise UnsupportedError(f"Input '{name}' carries {bits}-bit payloads, and target "
                                   f"'{target.name}' has {what}", node=name,
                                   hint="Compile for loihi2 (--target loihi2)" if top <= 0
                                   else f"Pass --input-bits {top} or fewer.")
        out[name] = int(bits)
    return out


def compile_integer(net: HwNet, graph: ir.Graph, options: Options | None = None) -> Compiled:
    """Map and emit a hardware model that is already in the target's integers (a netx
    file, ``backends/netx_hw.py``): the same integers come out. The range check reports
    worst-case bounds as information and refuses only what overflows in a single step."""
    options = options or Options()
    target = load_target(options.target)
    check_values(net, target)
    s = State(graph, target, options, net=net, integer=True)
    return _run(s, INTEGER_PIPELINE, None)


def _run(s: State, pipeline: tuple[tuple[str, Callable[[State], State]], ...],
         calibration: np.ndarray | None) -> Compiled:
    options = s.options
    s.pipeline = tuple(name for name, _ in pipeline)
    dump = Path(options.dump_ir) if options.dump_ir else None
    if dump:
        paths.output_folder(dump, "dump_ir").mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, (name, fn) in enumerate(pipeline):
            start = time.perf_counter()
            s = fn(s)
            _validate(name, s, options.verify_each)
            s.timings[name] = time.perf_counter() - start
            if dump and name != "emit":
                nirio.write(annotated_graph(s, name), dump / f"{k:02d}_{name}.nir")
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=3)
    extra: dict[str, Any] = {"warnings": [str(w.message) for w in caught]}
    if calibration is not None:
        extra["cost"] = estimate_cost(s.program, calibration)
    s.net = s.net.with_(report={**s.net.report, **extra})
    return Compiled(s.program, s.net, annotated_graph(s, "map"), s.target, options, s.timings,
                    s.pipeline)


def estimate_cost(program: Any, data: np.ndarray, samples: int = 32) -> dict[str, Any]:
    """Energy and latency per timestep from the target's cost model, measured by running
    the program on (up to ``samples`` of) the calibration data in the emulator."""
    from snn2hw import execute

    res = execute.run(program, np.asarray(data)[:samples])
    cost = res.cost
    steps = cost.latency_ns.shape[1]
    return {"samples": int(cost.latency_ns.shape[0]), "steps": int(steps),
            "energy_per_step_pj": float(cost.energy_pj.mean() / steps),
            "latency_per_step_ns": float(cost.latency_ns.mean()),
            "latency_per_step_max_ns": float(cost.latency_ns.max()),
            "estimated_figures": bool(cost.estimated), "summary": cost.summary()}


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
    "PIPELINE",
    "Compiled",
    "Options",
    "check_program",
    "check_values",
    "compile",
    "compile_integer",
    "report",
]
