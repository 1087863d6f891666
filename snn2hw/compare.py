"""Compare two executions of the same program: the first divergence, in words.

Works on any results with ``spikes``/``u``/``v`` dicts (group -> (B, T, n)): the
emulator, Lava, later a board. Step t is reported 1-based (index t-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


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


def first_divergence(a: Any, b: Any, variables: Sequence[str] = ("spikes", "u", "v")
                     ) -> Divergence | None:
    """The earliest (by step, then variable order) differing value, or None if equal."""
    best: Divergence | None = None
    total = 0
    for var in variables:
        da, db = getattr(a, var) or {}, getattr(b, var) or {}
        for group in sorted(set(da) & set(db)):
            x, y = np.asarray(da[group]), np.asarray(db[group])
            if x.shape != y.shape:
                raise ValueError(f"{var}[{group}] shapes differ: {x.shape} vs {y.shape}")
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
