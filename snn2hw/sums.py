"""What one shard of a verify run sums, and the reports reduced from the shards' sums.

A shard (snn2hw.shard; the one-process run is one shard) returns only sums over its
samples: correct and agreeing predictions, per layer the spike counts, identical and
fed-identical entry counts and the correlation's sums, saturation counts, cost-model
sums, for a device comparison its first divergence with the global sample index, and for
--png/--report what the figures draw (snn2hw.traces). Every sum is exact (integers;
float sums as exact partials, snn2hw.exact), so a report is the same for any number of
shards, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw import execute, iomap, layerwise, traces
from snn2hw.compare import Divergence, Unmatched, explain, first_divergence
from snn2hw.errors import UserInputError
from snn2hw.exact import corr_stats, correlation, exact_sum, total
from snn2hw.iomap import AlignedResult, IoMap, XyloIoMap

if TYPE_CHECKING:
    from snn2hw.devices import AnyProgram
    from snn2hw.ir import Graph
    from snn2hw.reference import SimResult

#: the io map of either family (both name outputs and populations)
AnyIoMap = IoMap | XyloIoMap

__all__ = ["DeviceComparison", "LayerAgreement", "VerifyReport", "compare_report",
           "compare_sums", "decode", "same_populations", "verify_report", "verify_sums"]


@dataclass
class LayerAgreement:
    population: str
    spikes_reference: int
    spikes_device: int
    identical_fraction: float        # of (sample, step, neuron) entries
    count_correlation: float         # of per-neuron spike counts over the data
    fed_fraction: float | None = None  # the same, the layer fed the device's input spikes


@dataclass
class VerifyReport:
    device: str
    samples: int
    steps: int
    accuracy_reference: float | None
    accuracy_device: float | None
    prediction_agreement: float
    layers: list[LayerAgreement]
    saturation: dict[str, dict[str, int]]
    cost: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        lines = [(f"verify: {self.samples} samples x {self.steps} steps, float reference vs "
                 f"{self.device}")]
        if self.accuracy_reference is not None:
            lines.append(f"  accuracy   float reference {100 * self.accuracy_reference:6.2f}%"
                         f"   {self.device} {100 * self.accuracy_device:6.2f}%   "
                         f"(difference {100 * (self.accuracy_device - self.accuracy_reference):+.2f}"
                         " pp)")
        lines.append(f"  same predicted class on {100 * self.prediction_agreement:.2f}% of samples")
        lines.append(f"  {'layer':<16} {'spikes float':>12} {'spikes hw':>10} "
                     f"{'identical':>10} {'count corr':>10} {'fed':>8}")
        for la in self.layers:
            lines.append(f"  {la.population:<16} {la.spikes_reference:>12} {la.spikes_device:>10} "
                         f"{100 * la.identical_fraction:>9.2f}% {la.count_correlation:>10.4f}"
                         + (f" {100 * la.fed_fraction:>7.2f}%" if la.fed_fraction is not None
                            else ""))
        clipped = {g: s for g, s in self.saturation.items()
                   if any(v for k, v in s.items() if k != "first_step")}
        lines.append("  saturation: " + (", ".join(f"{g}: " + ", ".join(
            f"{v} {k.replace('_clip', ' clips').replace('_wrap', ' wraps')}"
            for k, v in s.items() if k != "first_step") for g, s in clipped.items())
                                         if clipped else "none"))
        if self.cost:
            lines.append("  cost model (" + self.device + "): " + self.cost.replace("\n", "\n  "))
        return "\n".join(lines)


@dataclass
class DeviceComparison:
    device: str
    against: str
    samples: int
    steps: int
    groups: int
    divergence: Divergence | Unmatched | None
    accuracy: dict[str, float] = field(default_factory=dict)
    upstream: str = ""
    layers: list[tuple[str, int, int, float]] = field(default_factory=list)
    variables: tuple[str, ...] = ("spikes", "u", "v")

    def table(self) -> str:
        names = list(self.variables)
        names = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        what = f"{self.samples} samples x {self.steps} steps, {names} of " \
               f"{self.groups} group(s)"
        head = (f"{self.device} vs {self.against}: bit-identical over {what}"
                if self.divergence is None else
                f"{self.device} vs {self.against}: {self.divergence} (compared {what})")
        accs = "   ".join(f"{k} {100 * v:.2f}%" for k, v in self.accuracy.items())
        head += f"\n{self.upstream}" if self.upstream else ""
        rows = "".join(f"\n  {pop:<16} {a:>12} {b:>12} {100 * same:>9.2f}%"
                       for pop, a, b, same in self.layers)
        table = (f"\n  {'layer':<16} {'spikes ' + self.against:>12} "
                 f"{'spikes ' + self.device:>12} {'identical':>10}" + rows) if rows else ""
        return head + table + (f"\n  accuracy   {accs}" if accs else "")


def decode(output: np.ndarray, readout: bool) -> np.ndarray:
    flat = output.reshape(output.shape[0], output.shape[1], -1)
    return (flat.mean(axis=1) if readout else flat.sum(axis=1)).argmax(axis=-1)


def same_populations(ref: dict[str, np.ndarray], hw: dict[str, np.ndarray], io: AnyIoMap,
                      device: str) -> None:
    """Every spiking population of the model is on the device and vice versa (readouts,
    which do not spike, aside): a comparison of what both happen to have could pass on
    nothing."""
    readouts = {o.population for o in io.outputs.values() if o.readout}
    only = sorted(set(ref) ^ (set(hw) - readouts))
    if only:
        pop = only[0]
        has, lacks = ("float reference", device) if pop in ref else (device, "float reference")
        raise UserInputError(f"population '{pop}' spikes in the {has} but not on the {lacks}, "
                             "so their spikes cannot be compared",
                             hint="Verify a program compiled from this model.")


def verify_sums(graph: Graph, ref: SimResult, hw: AlignedResult, io: AnyIoMap, data: np.ndarray,
                labels: np.ndarray | None, dt: float | None, device: str, *,
                figures: bool = False, first: bool = True) -> dict[str, Any]:
    """The sums of one shard's float reference ``ref`` and device run ``hw``; with
    ``figures``, what --png/--report draw (:func:`snn2hw.traces.sums`; sample 0's rasters
    where ``first``: the shard holds sample 0)."""
    out_name = next(iter(io.outputs))
    readout = io.outputs[out_name].readout
    pred_ref = decode(ref.outputs[out_name], readout)
    pred_hw = decode(hw.outputs[out_name], readout)
    same_populations(ref.spikes, hw.spikes, io, device)
    spiking = {pop: s for pop, s in hw.spikes.items() if pop in ref.spikes}
    fed = layerwise.fed_agreement(graph, spiking, data.astype(float), dt=dt)
    layers = []
    for pop, s_hw in spiking.items():
        s_ref = ref.spikes[pop].reshape(s_hw.shape)
        # fed_agreement gives a fraction c / size: round(fraction * size) is c exactly
        fed_count = round(fed[pop][0] * s_hw.size) if fed[pop][0] is not None else None
        layers.append((pop, int(s_ref.sum()), int(s_hw.sum()),
                       int(np.count_nonzero(s_ref == s_hw)), int(s_hw.size),
                       corr_stats(s_ref.sum(axis=1), s_hw.sum(axis=1)), fed_count))
    cost = None
    if hw.cost is not None:
        c = hw.cost
        cost = {"totals": {e: int(v.sum()) for e, v in c.counts.items()},
                "energy": exact_sum(c.energy_pj), "latency": exact_sum(c.latency_ns),
                "latency_max": float(c.latency_ns.max()), "steps": int(c.latency_ns.shape[1]),
                "estimated": bool(c.estimated)}
    return {"samples": int(data.shape[0]), "steps": int(data.shape[1]),
            "figures": traces.sums(ref, hw, out_name, first) if figures else None,
            "correct": None if labels is None else
            (int((pred_ref == labels).sum()), int((pred_hw == labels).sum())),
            "agree": int((pred_ref == pred_hw).sum()), "layers": layers,
            "saturation": {g: {k: int(v) for k, v in s.items()} for g, s in
                           hw.saturation.items()}, "cost": cost}


def _cost_line(parts: list[dict[str, Any]], samples: int) -> str:
    """emulator.cost.CostReport.summary's line, from the shards' sums."""
    tot = {e: sum(p["totals"][e] for p in parts) for e in parts[0]["totals"]}
    steps = parts[0]["steps"]
    latency = total([p["latency"] for p in parts])
    flag = " (target cost figures are estimates)" if parts[0]["estimated"] else ""
    energy = total([p["energy"] for p in parts])
    energy_text = (f"{energy / samples / 1e6:.4f} uJ" if energy else
                   "energy not modelled (no published figures)")
    return (f"cost per sample: {energy_text}, "
            f"{latency / samples / 1e3:.2f} us over {steps} steps "
            f"(mean step {latency / (samples * steps):.0f} ns, "
            f"max {max(p['latency_max'] for p in parts):.0f} ns)"
            f"; totals over {samples} sample(s): {tot['synops']} synops, {tot['spikes']} spikes "
            f"({tot['payload_bits']} payload bits), "
            f"{tot['hops']} hops, {tot['active']} active neuron updates{flag}")


def verify_report(shards: list[dict[str, Any]], device: str) -> VerifyReport:
    """The VerifyReport of the shards' :func:`verify_sums`, in sample order."""
    n = sum(s["samples"] for s in shards)
    acc_ref = acc_dev = None
    if shards[0]["correct"] is not None:
        acc_ref = sum(s["correct"][0] for s in shards) / n
        acc_dev = sum(s["correct"][1] for s in shards) / n
    layers = []
    for k, first in enumerate(shards[0]["layers"]):
        rows = [s["layers"][k] for s in shards]
        size = sum(r[4] for r in rows)
        fed = None if first[6] is None else sum(r[6] for r in rows) / size
        layers.append(LayerAgreement(first[0], sum(r[1] for r in rows), sum(r[2] for r in rows),
                                     sum(r[3] for r in rows) / size,
                                     correlation([r[5] for r in rows]), fed))
    saturation: dict[str, dict[str, int]] = {}
    for s in shards:
        for g, counts in s["saturation"].items():
            into = saturation.setdefault(g, {})
            for key, v in counts.items():
                into[key] = into.get(key, 0) + v
    costs = [s["cost"] for s in shards]
    cost = _cost_line(costs, n) if all(c is not None for c in costs) else None
    return VerifyReport(device, n, shards[0]["steps"], acc_ref, acc_dev,
                        sum(s["agree"] for s in shards) / n, layers, saturation, cost)


def compare_sums(program: AnyProgram, data: np.ndarray, labels: np.ndarray | None, device: str,
                 against: str, offset: int = 0, accelerator: str = "cpu") -> dict[str, Any]:
    """One shard of :func:`snn2hw.verify.compare_devices`: its first divergence (sample
    index made global by ``offset``) with the explanation, and counts (the emulator's
    side on ``accelerator``)."""
    runs = {d: execute.run(program, data, device=d, record_states=True,
                           accelerator=accelerator if d == "emulator" else "cpu")
            for d in (device, against)}
    div = first_divergence(runs[against].raw, runs[device].raw, execute.states(program),
                           names=(against, device))
    detail = explain(program, runs[against].raw, div, runs[against].ports) if div else ""
    if isinstance(div, Divergence):
        div = replace(div, sample=div.sample + offset)
    io = iomap.read(program)
    out_name = next(iter(io.outputs))
    readout = io.outputs[out_name].readout
    correct = {}
    if labels is not None:
        correct = {d: int((decode(r.outputs[out_name], readout) == labels).sum())
                   for d, r in runs.items()}
    steps = max((s.shape[1] for r in runs.values() for s in (r.raw.spikes or {}).values()),
                default=int(data.shape[1]))
    layers = [(pop, int(np.count_nonzero(s)), int(np.count_nonzero(runs[device].spikes[pop])),
               int(np.count_nonzero(s == runs[device].spikes[pop])), int(s.size))
              for pop, s in runs[against].spikes.items() if pop in runs[device].spikes]
    return {"samples": int(data.shape[0]), "steps": int(steps), "divergence": div,
            "detail": detail, "correct": correct, "layers": layers}


def compare_report(shards: list[dict[str, Any]], program: AnyProgram, device: str,
                   against: str) -> DeviceComparison:
    """The DeviceComparison of the shards' :func:`compare_sums`, in sample order. The
    first divergence: the earliest step, then the variable and group in
    first_divergence's order, then the lowest sample; its count is the total."""
    variables = list(execute.states(program))
    divs = [(s["divergence"], s["detail"]) for s in shards if s["divergence"] is not None]
    div, detail = None, ""
    unmatched = [d for d in divs if not isinstance(d[0], Divergence)]
    if unmatched:
        div, detail = unmatched[0]
    elif divs:
        div, detail = min(divs, key=lambda d: (d[0].step, variables.index(d[0].variable),
                                               d[0].group, d[0].sample))
        div = replace(div, count=sum(d[0].count for d in divs))
    n = sum(s["samples"] for s in shards)
    acc = {d: sum(s["correct"][d] for s in shards) / n for d in shards[0]["correct"]}
    layers = []
    for k, first in enumerate(shards[0]["layers"]):
        rows = [s["layers"][k] for s in shards]
        layers.append((first[0], sum(r[1] for r in rows), sum(r[2] for r in rows),
                       sum(r[3] for r in rows) / sum(r[4] for r in rows)))
    return DeviceComparison(device, against, n, max(s["steps"] for s in shards),
                            len(getattr(program, "groups", ("hidden", "output"))), div,
                            acc, detail, layers,
                            execute.states(program))
