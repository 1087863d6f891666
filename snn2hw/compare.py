"""Compare two executions of the same program: the first divergence, in words.

Works on any results with ``spikes``/``u``/``v`` dicts (group -> (B, T, n)): the
emulator, Lava, later a board. Step t is reported 1-based (index t-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from snn2hw_emulator.result import RunResult

    from snn2hw.devices import AnyProgram


@dataclass(frozen=True)
class Divergence:
    step: int
    sample: int
    group: str
    neuron: int
    variable: str
    a: int
    b: int
    count: int

    def __str__(self) -> str:
        return (f"first divergence at step {self.step}, sample {self.sample}, group "
                f"'{self.group}', neuron {self.neuron}, variable {self.variable}: "
                f"{self.a} vs {self.b} ({self.count} differing values in all)")


@dataclass(frozen=True)
class Unmatched:
    """The two results cannot be compared value by value: one recorded a variable of a
    group that the other did not (or neither recorded it, or in another shape)."""

    variable: str
    group: str
    reason: str

    def __str__(self) -> str:
        what = f"{self.variable} of group '{self.group}'" if self.group else self.variable
        return (f"not comparable: {what} {self.reason}; record the same groups and "
                "variables on both sides")


def first_divergence(a: RunResult, b: RunResult, variables: Sequence[str] = ("spikes", "u", "v"),
                     names: tuple[str, str] = ("the first result", "the second result")
                     ) -> Divergence | Unmatched | None:
    """The earliest (by step, then variable order) differing value, or None if every
    requested variable of every group is recorded by both and equal. A group or variable
    that only one side recorded (or neither), or shapes that differ, give an Unmatched:
    a check that compared nothing must not pass."""
    best: Divergence | None = None
    total = 0
    for var in variables:
        da, db = getattr(a, var, None) or {}, getattr(b, var, None) or {}
        if not da and not db:
            return Unmatched(var, "", f"was recorded by neither {names[0]} nor {names[1]}")
        only = sorted(set(da) ^ set(db))
        if only:
            has, lacks = names if only[0] in da else names[::-1]
            return Unmatched(var, only[0], f"was recorded by {has} but not by {lacks}")
        for group in sorted(da):
            x, y = np.asarray(da[group]), np.asarray(db[group])
            if x.shape != y.shape or x.ndim != 3:
                return Unmatched(var, group, f"has shape {x.shape} in {names[0]} and "
                                 f"{y.shape} in {names[1]} (expected equal (B, T, n))")
            diff = np.argwhere(x != y)
            total += len(diff)
            if len(diff):
                first = diff[np.lexsort((diff[:, 0], diff[:, 1]))[0]]
                s, t, n = (int(v) for v in first)
                if best is None or t + 1 < best.step:
                    best = Divergence(t + 1, s, group, n, var, int(x[s, t, n]), int(y[s, t, n]),
                                      0)
    if best is None:
        return None
    return Divergence(best.step, best.sample, best.group, best.neuron, best.variable, best.a,
                      best.b, total)


def explain(program: AnyProgram, result: RunResult, div: Divergence | Unmatched,
            ports: dict[str, np.ndarray],
            limit: int = 8) -> str:
    """What fed the diverging neuron: its u and v on the step before (in ``result``) and,
    per synapse block into it, the sources active one step (plus any delay) earlier with
    their weights. ``ports``: the port arrays (B, T, size) that were fed."""
    from snn2hw_emulator.program import expanded_weights

    if not isinstance(div, Divergence):             # nothing value-level to explain
        return ""

    s, t, g, n = div.sample, div.step, div.group, div.neuron
    lines = []
    if t >= 2:
        state = ", ".join(f"{var}={int(getattr(result, var)[g][s, t - 2, n])}"
                          for var in ("u", "v", "i_syn", "i_syn2")
                          if g in (getattr(result, var, None) or {}))
        lines.append(f"  '{g}'[{n}] at step {t - 1}: {state or 'state not recorded'}")
    for b in getattr(program, "blocks", ()):     # a Xylo program: its state only
        if b.target != g:
            continue
        if b.kind == "conv":
            lines.append(f"  block '{b.name}': convolution from '{b.source}' (not itemised)")
            continue
        w = expanded_weights(b)[n]
        delays = np.asarray(b.delays)[n] if b.delays is not None else np.zeros_like(w)
        src = ports.get(b.source) if b.source in ports else result.spikes.get(b.source)
        items = []
        for j in np.flatnonzero(w):
            k = t - 2 - int(delays[j])          # index of the step whose value arrives now
            if src is not None and 0 <= k < src.shape[1] and src[s, k, j] != 0:
                items.append(f"{b.source}[{j}]={int(src[s, k, j])} (w={int(w[j])})")
        shown = ", ".join(items[:limit]) + (f", ... {len(items) - limit} more"
                                            if len(items) > limit else "")
        lines.append(f"  block '{b.name}' (weight_exp {b.weight_exp}): "
                     f"{len(items)} active input(s) arriving at step {t}: {shown or 'none'}")
    return "\n".join(lines)
