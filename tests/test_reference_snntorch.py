"""Acceptance: the float reference reproduces snnTorch's own forward pass exactly."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import snntorch_models as sm

from snn2hw import reference
from snn2hw.errors import UnsupportedError
from snn2hw.importers.snntorch import from_snntorch

T, B = 100, 8


def _inputs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1.5, (B, T, 5))


def _compare(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    for module, spikes in expected.items():
        node = module if module in got else f"{module}.lif"
        diff = int((spikes != got[node]).sum())
        assert spikes.sum() > 20, f"{module}: too few spikes for a meaningful test"
        assert diff == 0, (f"{module}: {diff} of {spikes.size} spike entries differ; first at "
                           f"{np.argwhere(spikes != got[node])[0]}")


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("kind", ["leaky", "synaptic", "rleaky"])
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_equals_snntorch(kind: str, reset: str, seed: int) -> None:
    net = sm.make(kind, reset, seed=seed)
    x = _inputs(seed)
    graph = from_snntorch(net, x[:, 0])
    result = reference.simulate(graph, x, record=("spikes",))
    _compare(sm.run(net, x), result.spikes)
    assert graph.metadata["dt"] == 1e-4


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_rsynaptic_equals_snntorch_synaptic_with_recurrence(reset: str) -> None:
    net = sm.make("rsynaptic", reset, seed=3)
    x = _inputs(3)
    graph = from_snntorch(net, x[:, 0])
    assert {"1.lif", "1.w_rec", "3.lif", "3.w_rec"} <= set(graph.nodes)
    result = reference.simulate(graph, x, record=("spikes",))
    _compare(sm.run_rsynaptic_as_synaptic(net, x), result.spikes)


def test_reset_modes_recorded_per_node() -> None:
    graph = from_snntorch(sm.make("leaky", "subtract"), _inputs(0)[:, 0])
    assert graph.nodes["1"].metadata["reset"] == "snntorch_subtract"
    assert graph.metadata["reset"] == "snntorch_subtract"


def test_scalar_parameters_are_broadcast() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 6),
                              snn.Leaky(beta=0.9, init_hidden=True, reset_delay=False))
    graph = from_snntorch(net, torch.zeros(2, 4))
    assert np.shape(graph.nodes["1"].tau) == (6,)
    assert np.shape(graph.nodes["1"].v_threshold) == (6,)


def test_reset_delay_true_is_refused_with_a_fix() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 6),
                              snn.Synaptic(alpha=0.5, beta=0.9, init_hidden=True))
    with pytest.raises(UnsupportedError, match="reset_delay=True.*reset_delay=False"):
        from_snntorch(net, torch.zeros(2, 4))


def test_unexportable_module_is_named() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(),
                              snn.Leaky(beta=0.9, init_hidden=True, reset_delay=False))
    with pytest.raises(UnsupportedError, match="module '1' \\(ReLU\\)"):
        from_snntorch(net, torch.zeros(2, 4))
