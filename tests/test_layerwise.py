"""Per-layer agreement with each layer fed the device's input spikes (snn2hw/layerwise.py):
on the reference's own spikes it is exact, and it sees the errors of the layer itself."""

from __future__ import annotations

import nir
import numpy as np

from snn2hw import checker, ir, reference
from snn2hw.layerwise import fed_agreement


def _net() -> ir.Graph:
    """6 -> LIF 10 -> CubaLIF 5 with a recurrent projection (feeds itself one step late)."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([6])),
             "fc1": nir.Affine(rng.normal(size=(10, 6)) * 3, np.full(10, 0.2)),
             "a": nir.LIF(tau=np.full(10, 5e-3), r=np.ones(10), v_leak=np.zeros(10),
                          v_threshold=np.ones(10)),
             "fc2": nir.Linear(rng.normal(size=(5, 10)) * 2),
             "b": nir.CubaLIF(tau_syn=np.full(5, 3e-3), tau_mem=np.full(5, 6e-3),
                              r=np.full(5, 2.0), v_leak=np.zeros(5), v_threshold=np.ones(5),
                              w_in=np.ones(5)),
             "rec": nir.Linear(rng.normal(size=(5, 5)) * 2),
             "output": nir.Output(np.array([5]))}
    edges = [("input", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "b"), ("b", "rec"),
             ("rec", "b"), ("b", "output")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-3})


def test_fed_the_references_own_spikes_every_layer_agrees_exactly() -> None:
    graph = _net()
    x = (np.random.default_rng(1).random((4, 60, 6)) < 0.3).astype(float)
    spikes = reference.simulate(graph, x, record=("spikes",)).spikes
    assert all(int(s.sum()) > 20 for s in spikes.values())
    got = fed_agreement(graph, {k: s.reshape(4, 60, -1) for k, s in spikes.items()}, x)
    assert got == {k: (1.0, int(s.sum())) for k, s in spikes.items()}


def test_a_layers_own_errors_count_and_feed_the_next() -> None:
    graph = _net()
    x = (np.random.default_rng(1).random((4, 60, 6)) < 0.3).astype(float)
    spikes = reference.simulate(graph, x, record=("spikes",)).spikes
    device = {k: s.reshape(4, 60, -1).copy() for k, s in spikes.items()}
    flip = np.zeros(device["a"].size, dtype=bool)
    flip[np.random.default_rng(2).choice(flip.size, 24, replace=False)] = True
    device["a"] = np.where(flip.reshape(device["a"].shape), 1 - device["a"], device["a"])
    got = fed_agreement(graph, device, x)
    assert got["a"][0] == 1 - 24 / device["a"].size
    assert got["b"][0] < 1.0          # 'b' is fed the flipped spikes; the device's are not
