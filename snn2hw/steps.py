"""The compiler's passes as functions from one IR level to the next (:mod:`snn2hw.levels`):
``step(level, ctx) -> level``. Each is a thin adapter over a pass module in
``snn2hw/passes/`` (or a backend); :mod:`snn2hw.compiler` lists them in order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from snn2hw import ir, sdnn
from snn2hw.backends import image as image_backend
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.levels import Context, Discrete, Emitted, Layers, Structured
from snn2hw.passes import (
    bounds,
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
from snn2hw.passes.hwmodel import HwNet

# --------------------------------------------------------------------------- float levels


def port_bits(graph: ir.Graph, ctx: Context) -> dict[str, int]:
    """Payload bits of every input port (0: binary spikes): ``options.input_bits`` for
    all, else what each Input node declares (``sdnn.PAYLOAD_BITS_KEY``). Refused in one
    line: a port narrower than its Input's payloads, or graded ports on a target
    without graded spikes."""
    declared = sdnn.input_bits(graph)
    given, target = ctx.options.input_bits, ctx.target
    out = {}
    for name in graph.inputs():
        bits = declared.get(name, 0) if given is None else given
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


def canonicalise(graph: ir.Graph, ctx: Context) -> Structured:
    """Graph -> Structure: input port widths; populations and projections; offsets and
    path-evening delays."""
    bits = port_bits(graph, ctx)
    return Structured(graph, structure.analyse(graph), bits)


def discretise(s: Structured, ctx: Context) -> Discrete:
    """Structure -> Dynamics: every neuron population's Loihi constants at dt."""
    opt = disc.options(s.graph, ctx.options.dt)
    dyns = {pop: disc.dynamics(pop, s.graph.nodes[pop], s.structure.size(pop), opt,
                               ctx.options.approximations, ctx.target.numeric)
            for pop in s.structure.populations if pop not in s.graph.inputs()}
    return Discrete(s.graph, s.structure, s.port_bits, reference=opt, dynamics=dyns)


def calibrate(d: Discrete, ctx: Context) -> Discrete:
    """Dynamics -> Dynamics: with calibration data, the input sums and |v| the float
    reference reaches on it (else the worst case stands)."""
    if ctx.calibration is None:
        return d
    stats = bounds.calibrated_stats(d.structure, dict(d.dynamics), d.graph, ctx.calibration,
                                    d.reference.dt)
    return dataclasses.replace(d, stats=stats)


def lower_current_bias(d: Discrete, ctx: Context) -> Discrete:
    """Dynamics -> Dynamics: a CubaLIF's current bias as an always-on source through its
    synapses (exact)."""
    st, dyns, stats = current_bias.lower(d.structure, dict(d.dynamics), d.stats,
                                         ctx.options.approximations, ctx.target.numeric)
    return dataclasses.replace(d, structure=st, dynamics=dyns, stats=stats)


def layers(s: Structured, ctx: Context) -> Layers:
    """Structure -> Layers: each sigma-delta layer's bounds, stored by the converter or
    the worst case."""
    found, source = quantise_sdnn.layer_bounds(s.graph, s.structure, dict(s.port_bits))
    return Layers(s.graph, s.structure, s.port_bits, bounds=found, bounds_source=source)


def calibrate_layers(lv: Layers, ctx: Context) -> Layers:
    """Layers -> Layers: with calibration data (and no bounds from the converter), the
    bounds the float reference reaches on it."""
    if ctx.calibration is None or lv.bounds_source == quantise_sdnn.STORED:
        return lv
    seen = quantise_sdnn.calibrated_bounds(lv.graph, lv.structure, ctx.calibration)
    return dataclasses.replace(lv, bounds=seen, bounds_source="calibration data")


# --------------------------------------------------------------------------- hardware levels


def _weight_bits(ctx: Context) -> int:
    return ctx.options.weight_bits or ctx.target.numeric.weight_bits_max


def quantise(d: Discrete, ctx: Context) -> HwNet:
    """Dynamics -> HwNet: neuron groups, one scale each; integer weights, thresholds,
    biases and initial voltages."""
    o, bits = ctx.options, _weight_bits(ctx)
    graded = {p: b for p, b in d.port_bits.items() if b}
    opts = quant.QuantOptions(bits, o.rounding, o.keep_conv, o.approximations, o.scale_groups,
                              o.netx, tuple((p, 2 ** (b - 1)) for p, b in graded.items()))
    net = quant.quantise(d.structure, dict(d.dynamics), ctx.target, opts,
                         None if d.stats is None else dict(d.stats))
    net = current_bias.refine(net, d.structure, dict(d.dynamics), o.rounding,
                              ctx.target.numeric)
    if graded:                        # graded input ports: their blocks take payloads
        net = net.with_(port_bits=dict(d.port_bits), blocks=tuple(
            dataclasses.replace(b, num_message_bits=graded.get(b.source, 0)) if b.source
            in graded else b for b in net.blocks))
    scale_policy.explain(net.report.get("quantise", {}), bits, d.stats is not None)
    return net.with_(stats=None if d.stats is None else dict(d.stats))


def quantise_layers(lv: Layers, ctx: Context) -> HwNet:
    """Layers -> HwNet: sigma-delta layers' integer grids, weights, bias, vth, payload
    shifts."""
    return quantise_sdnn.quantise(lv.graph, lv.structure, ctx.target,
                                  weight_bits=_weight_bits(ctx), rounding=ctx.options.rounding,
                                  keep_conv=ctx.options.keep_conv,
                                  port_bits=dict(lv.port_bits), bounds=dict(lv.bounds),
                                  bounds_source=lv.bounds_source)


def share_weights(net: HwNet, ctx: Context) -> HwNet:
    """HwNet -> HwNet: ``--share K``: K-value codebooks per block or per neuron."""
    o = ctx.options
    if not o.share:
        return net
    return share.share(net, o.share, o.share_scope, o.share_method, ctx.target.numeric)


def check_ranges(net: HwNet, ctx: Context) -> HwNet:
    """HwNet -> HwNet: bounds on the input sum, u and v (refused or, allowed, a warning)."""
    return ranges.check(net, ctx.target, net.stats, ctx.options.allow_saturation)


def check_ranges_integer(net: HwNet, ctx: Context) -> HwNet:
    """HwNet -> HwNet for a source already in integers: worst-case bounds as information;
    refused only what overflows in a single step."""
    return ranges.check(net, ctx.target, None, ctx.options.allow_saturation, integer=True)


def place(net: HwNet, ctx: Context) -> HwNet:
    """HwNet -> Placed: groups split onto cores, cores onto chips; core design rules."""
    return mapping.map_to_cores(net, ctx.target)


def emit(net: HwNet, ctx: Context) -> Emitted:
    """Placed -> Program: the program image, with the host I/O map and the compile record."""
    record = {"options": ctx.options.record(), "passes": list(ctx.steps),
              "snn2hw": __import__("snn2hw").__version__}
    return Emitted(image_backend.build(net, ctx.target, record=record), net)


def cost(e: Emitted, ctx: Context) -> Emitted:
    """Program -> Program: with calibration data, energy and latency per step from the
    target's cost model, measured by running the program on it in the emulator."""
    if ctx.calibration is None:
        return e
    return e.with_(net=e.net.with_(report={**e.net.report, "cost": estimate_cost(
        e.program, ctx.calibration)}))


def estimate_cost(program: Any, data: np.ndarray, samples: int = 32) -> dict[str, Any]:
    """Energy and latency per timestep from the target's cost model, measured by running
    the program on (up to ``samples`` of) the calibration data in the emulator."""
    from snn2hw import execute

    res = execute.run(program, np.asarray(data)[:samples])
    c = res.cost
    steps = c.latency_ns.shape[1]
    return {"samples": int(c.latency_ns.shape[0]), "steps": int(steps),
            "energy_per_step_pj": float(c.energy_pj.mean() / steps),
            "latency_per_step_ns": float(c.latency_ns.mean()),
            "latency_per_step_max_ns": float(c.latency_ns.max()),
            "estimated_figures": bool(c.estimated), "summary": c.summary()}


__all__ = ["calibrate", "calibrate_layers", "canonicalise", "check_ranges",
           "check_ranges_integer", "cost", "discretise", "emit", "estimate_cost", "layers",
           "lower_current_bias", "place", "port_bits", "quantise", "quantise_layers",
           "share_weights"]
