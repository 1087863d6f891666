"""What the figures of ``snn2hw verify --png/--report`` need, as sums per shard.

The figures show sample 0's spikes (every population, float reference and device), the
cost model's energy and latency per step averaged over the samples, and the spikes each
core sent. A shard returns sample 0's rasters only if it holds sample 0, and the cost
model's per-step sums as exact partials (``exact.exact_sum``), so the figures, like the
report, come out the same for any number of shards and in the one-process run, which
reduces through the same sums. Nothing of size samples x steps crosses a process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw.exact import exact_sum

if TYPE_CHECKING:
    from snn2hw.iomap import AlignedResult
    from snn2hw.reference import SimResult


@dataclass
class Traces:
    """Sample 0's spikes per population (steps, neurons) in the reference and on the
    device, the output population's name, and the cost model's means over samples per step
    with the spikes each core sent (None without a cost model)."""

    output: str
    reference: dict[str, np.ndarray]
    device: dict[str, np.ndarray]
    reference_output: np.ndarray
    device_output: np.ndarray
    energy_step_pj: np.ndarray | None = None
    latency_step_ns: np.ndarray | None = None
    core_spikes: np.ndarray | None = None
    core_ids: tuple[int, ...] = ()
    #: the one-process run's own results ("reference", "device"); None from shards
    runs: dict[str, SimResult | AlignedResult] | None = None


def sums(ref: SimResult, hw: AlignedResult, out_name: str, first: bool) -> dict[str, Any]:
    """One shard's part: sample 0's rasters where ``first`` (the shard holds sample 0),
    the cost model's per-step exact sums and per-core spike totals."""
    part: dict[str, Any] = {"first": None, "cost": None}
    if first:
        part["first"] = {
            "reference": {p: _raster(s) for p, s in ref.spikes.items() if p in hw.spikes},
            "device": {p: _raster(s) for p, s in hw.spikes.items() if p in ref.spikes},
            "output": (out_name, _raster(ref.outputs[out_name]),
                       _raster(hw.outputs[out_name]))}
    c = hw.cost
    if c is not None and c.energy_step_pj is not None:
        part["cost"] = {"samples": int(c.latency_ns.shape[0]),
                        "energy": [exact_sum(c.energy_step_pj[:, t])
                                   for t in range(c.energy_step_pj.shape[1])],
                        "latency": [exact_sum(c.latency_ns[:, t])
                                    for t in range(c.latency_ns.shape[1])],
                        "core_spikes": c.per_core()["spikes"].astype(np.int64),
                        "core_ids": tuple(int(i) for i in c.core_ids)}
    return part


def _raster(s: np.ndarray) -> np.ndarray:
    """Sample 0 of a (B, T, *shape) array as (T, n): int8 spikes, int32 payloads, or the
    float values of a readout."""
    x = np.asarray(s[0])
    x = x.reshape(x.shape[0], -1)
    if np.issubdtype(x.dtype, np.floating) and not np.all(x == np.round(x)):
        return x
    return x.astype(np.int32 if x.size and np.abs(x).max() > 1 else np.int8)


def reduce(parts: list[dict[str, Any]]) -> Traces:
    """The Traces of the shards' :func:`sums` (one of them holds sample 0)."""
    first = next(p["first"] for p in parts if p["first"] is not None)
    name, ref_out, dev_out = first["output"]
    out = Traces(name, first["reference"], first["device"], ref_out, dev_out)
    costs = [p["cost"] for p in parts]
    if all(c is not None for c in costs):
        n = sum(c["samples"] for c in costs)

        def mean(key: str) -> np.ndarray:
            steps = len(costs[0][key])
            return np.array([math.fsum(x for c in costs for x in c[key][t]) / n
                             for t in range(steps)])
        out.energy_step_pj, out.latency_step_ns = mean("energy"), mean("latency")
        out.core_spikes = sum(c["core_spikes"] for c in costs)
        out.core_ids = costs[0]["core_ids"]
    return out


__all__ = ["Traces", "reduce", "sums"]
