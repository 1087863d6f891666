"""Lower a NIR graph's structure onto a Xylo core, in floats: which population is the input,
which are hidden (and where in the hidden index range), which is the output, and the
three weight matrices with each target neuron's gain applied.

Every hidden population (feed-forward hidden layers and recurrent ones alike) goes into
the one hidden range, input-fed populations first and the output's source last (Xylo
IMU's input weights reach only the first hidden neurons and its output weights leave
only the last). All hidden-to-hidden projections are one recurrent matrix.

Timing: Xylo delivers input in the same step and every hidden-to-hidden or
hidden-to-output hop one step later, so a population runs ``offset`` steps behind the
float reference: the structure's hop count minus one (the input hop is free). Paths
of different lengths into one population cannot be evened out (Xylo has no delays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn2hw.passes.structure import Structure
from snn2hw.xylo.dynamics import Dyn


@dataclass(frozen=True, eq=False)
class XyloNet:
    """The network on a Xylo core, weights in float I units per unit of V scale.

    ``weights_in`` (n_in, n_hidden, 1), ``weights_rec`` (n_hidden, n_hidden, 1),
    ``weights_out`` (n_hidden, n_out): entry [source, target] = the target neuron's gain
    times the model's weight. ``start``: hidden population -> first hidden index;
    ``index``: population -> its NIR flat indices in hardware order (identity here)."""

    input: str
    hidden: tuple[str, ...]
    output: str
    output_node: str
    start: dict[str, int]
    sizes: dict[str, int]
    offsets: dict[str, int]
    weights_in: np.ndarray
    weights_rec: np.ndarray
    weights_out: np.ndarray
    dyn: dict[str, Dyn]
    dt: float

    @property
    def n_hidden(self) -> int:
        return int(self.weights_rec.shape[0])

    def rows(self, population: str) -> np.ndarray:
        """The hardware indices (hidden range, or output range) of a population."""
        if population == self.output:
            return np.arange(self.sizes[population])
        return self.start[population] + np.arange(self.sizes[population])


def hidden_order(st: Structure, inp: str, output: str) -> tuple[str, ...]:
    """Hidden populations: those fed by the input first, the output's sources last, the
    rest in execution order between them."""
    neurons = [p for p in st.populations if p not in (inp, output)]
    fed = {p.target for p in st.projections if p.source == inp}
    feeds = {p.source for p in st.projections if p.target == output}
    first = [p for p in neurons if p in fed and p not in feeds]
    last = [p for p in neurons if p in feeds]
    middle = [p for p in neurons if p not in first and p not in last]
    return tuple(first + middle + last)


def lower(st: Structure, dyn: dict[str, Dyn], inp: str, output_node: str, dt: float
          ) -> XyloNet:
    """The float Xylo network of a structure whose design rules passed."""
    output = st.outputs[output_node]
    hidden = hidden_order(st, inp, output)
    sizes = {p: st.size(p) for p in st.populations}
    start, at = {}, 0
    for p in hidden:
        start[p], at = at, at + sizes[p]
    n_in, nh, no = sizes[inp], at, sizes[output]
    w_in, w_rec, w_out = np.zeros((n_in, nh, 1)), np.zeros((nh, nh, 1)), np.zeros((nh, no))
    for proj in st.projections:
        gain = dyn[proj.target].gain
        m = proj.rows(np.arange(sizes[proj.target])) * gain[:, None]   # (n_tgt, n_src)
        if proj.target == output:
            s = start[proj.source]
            w_out[s:s + sizes[proj.source]] += m.T
        elif proj.source == inp:
            t = start[proj.target]
            w_in[:, t:t + sizes[proj.target], 0] += m.T
        else:
            s, t = start[proj.source], start[proj.target]
            w_rec[s:s + sizes[proj.source], t:t + sizes[proj.target], 0] += m.T
    offsets = {p: max(0, st.offsets[p] - 1) for p in st.populations}
    return XyloNet(inp, hidden, output, output_node, start, sizes, offsets, w_in, w_rec,
                   w_out, dyn, dt)
