"""Per-primitive checks of the float reference against torch and hand-written updates."""

from __future__ import annotations

import nir
import nirgraphs
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn2hw import checker, ir, reference
from snn2hw.errors import UnsupportedError, UserInputError


def _chain(*pairs: tuple[str, nir.NIRNode], shape: tuple[int, ...]) -> ir.Graph:
    nodes = {"input": nir.Input(np.array(shape))}
    edges, prev = [], "input"
    for name, node in pairs:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    out_shape = reference.infer_shapes(ir.Graph(nodes, edges))[prev][1]
    nodes["output"] = nir.Output(np.array(out_shape))
    edges.append((prev, "output"))
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-4})


@settings(max_examples=25, deadline=None)
@given(stride=st.integers(1, 2), pad=st.integers(0, 2), dil=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), k=st.integers(1, 3), seed=st.integers(0, 99))
def test_conv2d_matches_torch(stride: int, pad: int, dil: int, groups: int, k: int,
                              seed: int) -> None:
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(4, 4 // groups, k, k)), rng.normal(size=4)
    node = nir.Conv2d(None, w, stride, pad, dil, groups, b)
    g = _chain(("conv", node), shape=(4, 7, 7))
    x = rng.normal(size=(2, 3, 4, 7, 7))
    got = reference.simulate(g, x).outputs["output"]
    want = torch.nn.functional.conv2d(torch.from_numpy(x.reshape(6, 4, 7, 7)), torch.from_numpy(w),
                                      torch.from_numpy(b), stride, pad, dil, groups)
    np.testing.assert_allclose(got.reshape(want.shape), want.numpy(), atol=1e-10)


def test_conv1d_same_padding_matches_torch() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 2, 4)), rng.normal(size=3)
    g = _chain(("conv", nir.Conv1d(None, w, 1, "same", 1, 1, b)), shape=(2, 9))
    x = rng.normal(size=(1, 2, 2, 9))
    got = reference.simulate(g, x).outputs["output"]
    want = torch.nn.functional.conv1d(torch.from_numpy(x[0]), torch.from_numpy(w),
                                      torch.from_numpy(b), padding="same")
    np.testing.assert_allclose(got[0], want.numpy(), atol=1e-10)


def test_pools_match_torch() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 2, 3, 6, 6))
    for cls, ref in ((nir.SumPool2d, lambda t: torch.nn.functional.avg_pool2d(t, 2, 2) * 4),
                     (nir.AvgPool2d, lambda t: torch.nn.functional.avg_pool2d(t, 2, 2))):
        g = _chain(("pool", cls(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
                   shape=(3, 6, 6))
        got = reference.simulate(g, x).outputs["output"]
        np.testing.assert_allclose(got[0], ref(torch.from_numpy(x[0])).numpy(), atol=1e-12)


def test_lif_euler_zero_reset_by_hand() -> None:
    tau, r, theta = 1e-3, 2.0, 0.5
    node = nir.LIF(tau=np.array([tau]), r=np.array([r]), v_leak=np.array([0.1]),
                   v_threshold=np.array([theta]), v_reset=np.array([-0.2]))
    g = _chain(("lif", node), shape=(1,))
    x = np.random.default_rng(2).uniform(0, 2, (1, 50, 1))
    res = reference.simulate(g, x, record=("states",))
    v, spikes = 0.0, []
    for t in range(50):
        v = v + 0.1 * (0.1 - v + r * x[0, t, 0])
        z = v > theta
        spikes.append(float(z))
        v = -0.2 if z else v
    assert np.array_equal(res.outputs["output"][0, :, 0], spikes) and sum(spikes) > 3
    assert res.states["lif"]["v"][0, -1, 0] == pytest.approx(v)


def test_exact_integrator_and_old_current() -> None:
    node = nir.CubaLI(tau_syn=np.array([2e-4]), tau_mem=np.array([5e-4]), r=np.array([1.0]),
                      v_leak=np.array([0.0]), w_in=np.array([1.0]))
    g = _chain(("li", node), shape=(1,))
    x = np.zeros((1, 3, 1))
    x[0, 0, 0] = 1.0
    new = reference.simulate(g, x).outputs["output"][0, :, 0]
    old = reference.simulate(g, x, cuba_voltage_uses="old").outputs["output"][0, :, 0]
    assert new[0] == pytest.approx(0.5 * 0.2) and old[0] == 0.0   # old current lags a step
    exact = reference.simulate(g, x, integrator="exact").outputs["output"][0, :, 0]
    i1 = 1 - np.exp(-0.5)
    assert exact[0] == pytest.approx(i1 * (1 - np.exp(-0.2)))


def test_if_sinabs_multispike() -> None:
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    g = _chain(("if", node), shape=(1,))
    x = np.array([[[2.5], [-3.0], [0.2]]])
    out = reference.simulate(g, x, reset="sinabs").outputs["output"][0, :, 0]
    assert list(out) == [2.0, 0.0, 0.0]          # v: 2.5 -> 0.5 ; -2.5 -> clamp -1 ; -0.8


def test_recurrent_edge_carries_previous_step() -> None:
    g = checker.from_nir(nirgraphs.recurrent(np.random.default_rng(0)), metadata={"dt": 1e-4})
    assert ("rnn.lif", "rnn.w_rec") in ir.recurrent_edges(g)
    x = np.random.default_rng(1).uniform(0, 3, (2, 30, 4))
    res = reference.simulate(g, x, record=("spikes", "states"))
    # v at step 0 sees no recurrent input
    fc = np.asarray(g.nodes["fc"].weight)
    v0 = 0.05 * (20.0 * (x[:, 0] @ fc.T))
    v0 = np.where(v0 > 1.0, 0.0, v0)
    np.testing.assert_allclose(res.states["rnn.lif"]["v"][:, 0], v0)


def test_delay_shifts_by_whole_steps() -> None:
    g = _chain(("d", nir.Delay(np.array([0.0, 2e-4, 3e-4]))), shape=(3,))
    x = np.random.default_rng(3).normal(size=(1, 6, 3))
    out = reference.simulate(g, x).outputs["output"][0]
    np.testing.assert_array_equal(out[:, 0], x[0, :, 0])
    np.testing.assert_array_equal(out[2:, 1], x[0, :4, 1])
    np.testing.assert_array_equal(out[:3, 2], 0)
    bad = _chain(("d", nir.Delay(np.array([1.5e-4]))), shape=(1,))
    with pytest.raises(UnsupportedError, match="multiples of dt"):
        reference.simulate(bad, x[:, :, :1])


def test_dt_default_warns_and_bad_inputs() -> None:
    g = checker.from_nir(nirgraphs.feedforward(np.random.default_rng(0)))
    with pytest.warns(UserWarning, match="dt=1e-4"):
        reference.simulate(g, np.zeros((1, 2, 5)))
    with pytest.raises(UserInputError, match=r"shape \(1, 2, 4\).*\(batch, time, 5\)"):
        reference.simulate(g, np.zeros((1, 2, 4)), dt=1e-4)
    with pytest.raises(UserInputError, match="reset='half'"):
        reference.simulate(g, np.zeros((1, 2, 5)), dt=1e-4, reset="half")


def test_conv_graph_runs() -> None:
    g = checker.from_nir(nirgraphs.conv(np.random.default_rng(0)), metadata={"dt": 1e-4})
    x = (np.random.default_rng(1).random((2, 5, 2, 8, 8)) < 0.5).astype(float)
    res = reference.simulate(g, x, record=("spikes",))
    assert res.outputs["output"].shape == (2, 5, 3)
    assert res.spikes["if0"].shape == (2, 5, 4, 8, 8) and res.spikes["if0"].sum() > 0
