"""What a run of a Loihi-family program returns (every device gives this type: the
emulator, Lava, netx, a board), and how results of consecutive batch slices join."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from snn2hw_emulator import cost as costmod
from snn2hw_emulator.kernels import SD_STATE
from snn2hw_emulator.program import Program
from snn2hw_emulator.xylo_result import XyloResult
from snn2hw_emulator.xylo_result import concatenate as xylo_concatenate

RECORDABLE = ("spikes", "u", "v", *SD_STATE)   # which groups have which: kernels.STATE_VARS

__all__ = ["RECORDABLE", "Result", "RunResult", "concatenate", "recorded"]


@dataclass(frozen=True)
class Result:
    """spikes/u/v: group -> (B, T, n); ``outputs``: output name -> spikes (B, T, n).
    ``saturation``: group -> {"v_clip": events, "u_wrap": events, "first_step": t or 0}.
    Sigma-delta groups: ``spikes`` holds their int32 payloads, ``sigma``/``act``/
    ``residue``/``error`` their state (when recorded); they have no u, v."""

    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    saturation: dict[str, dict[str, int]]
    cost: costmod.CostReport | None = None
    sigma: dict[str, np.ndarray] = field(default_factory=dict)
    act: dict[str, np.ndarray] = field(default_factory=dict)
    residue: dict[str, np.ndarray] = field(default_factory=dict)
    error: dict[str, np.ndarray] = field(default_factory=dict)


def recorded(program: Program, rec: Mapping[str, dict[str, np.ndarray]]) -> Result:
    """The Result of a device that reports what it recorded (variable -> group -> (B, T,
    n)) and neither saturation counts nor a cost model (Lava, netx): its outputs are the
    spikes of the output ports' groups that were recorded."""
    spikes = dict(rec.get("spikes", {}))
    return Result(spikes, dict(rec.get("u", {})), dict(rec.get("v", {})),
                  {o.name: spikes[o.group] for o in program.outputs if o.group in spikes}, {},
                  **{var: dict(rec.get(var, {})) for var in SD_STATE})


#: what a device returns: a Loihi-family result or a Xylo one
RunResult = Result | XyloResult


def concatenate(parts: Sequence[RunResult]) -> RunResult:
    """Join results of consecutive batch slices (of one program: all of one type)."""
    if parts and isinstance(parts[0], XyloResult):
        return xylo_concatenate([p for p in parts if isinstance(p, XyloResult)])
    loihi = [p for p in parts if isinstance(p, Result)]
    return _concatenate(loihi)


def _concatenate(parts: Sequence[Result]) -> Result:
    def cat(attr: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, attr)[k] for p in parts])
                for k in getattr(parts[0], attr)}

    sat: dict[str, dict[str, int]] = {}
    for p in parts:
        for g, d in p.saturation.items():
            s = sat.setdefault(g, {"v_clip": 0, "u_wrap": 0, "first_step": 0})
            s["v_clip"] += d["v_clip"]
            s["u_wrap"] += d["u_wrap"]
            firsts = [x for x in (s["first_step"], d["first_step"]) if x]
            s["first_step"] = min(firsts) if firsts else 0
    costs = [p.cost for p in parts if p.cost is not None]
    return Result(cat("spikes"), cat("u"), cat("v"), cat("outputs"), sat,
                  costmod.concatenate(costs) if costs else None,
                  **{var: cat(var) for var in SD_STATE})
