"""Per-layer agreement with each layer fed the device's own input spikes.

``verify``'s identical fraction compares a layer after the whole network above it ran
on each side (closed loop). In a network of integrating neurons one spike flipped early
(by the 8-bit rounding of a weight, say) moves spikes in every layer below it, so that
figure measures the network upstream as much as the layer. Here each spiking
population is simulated by the float reference on the *device's* spikes of its sources
(the device's own spikes of the step before on a recurrent projection), and its spikes
are compared with the device's: the error that layer's own compilation adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nir
import numpy as np

from snn2hw.errors import UserInputError
from snn2hw.passes.structure import analyse
from snn2hw.reference import neuron_trace, resolve_options


def _previous_step(a: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros_like(a[:, :1]), a[:, :-1]], axis=1)


def fed_agreement(graph: Any, device_spikes: Mapping[str, np.ndarray], data: Any, *,
                  dt: float | None = None) -> dict[str, tuple[float, int]]:
    """Per spiking population in ``device_spikes`` ((B, T, n) in NIR order): the
    fraction of (sample, step, neuron) entries where the float reference, fed the
    device's input spikes, spikes as the device did, and its spike count."""
    st = analyse(graph)
    opt = resolve_options(graph, dt=dt)
    inputs = [p for p in st.populations if isinstance(graph.nodes[p], nir.Input)]
    if not isinstance(data, Mapping) and len(inputs) != 1:
        raise UserInputError(f"the graph has {len(inputs)} inputs; pass a dict name -> array")
    given = data if isinstance(data, Mapping) else {inputs[0]: data}
    acts = {k: np.asarray(v, dtype=float).reshape(v.shape[0], v.shape[1], -1)
            for k, v in given.items()}
    acts.update({k: np.asarray(s, dtype=float).reshape(s.shape[0], s.shape[1], -1)
                 for k, s in device_spikes.items()})
    out: dict[str, tuple[float, int]] = {}
    for pop, got in device_spikes.items():
        node = graph.nodes[pop]
        b, t = got.shape[:2]
        drive = np.zeros((b, t, st.size(pop)))
        for p in st.into(pop):
            a = acts[p.source]
            drive += p.apply(_previous_step(a) if p.recurrent else a) + p.bias
        mode = str((node.metadata or {}).get("reset", opt.reset))
        z = neuron_trace(node, drive.reshape(b, t, *st.shapes[pop]), opt, mode)
        z = z.reshape(got.shape)
        out[pop] = (float((z == got).mean()), int(z.sum()))
    return out


__all__ = ["fed_agreement"]
