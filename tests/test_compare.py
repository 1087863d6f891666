"""Comparisons that can fail: a group or variable only one side recorded is a failure
(first_divergence, hil's assert_identical, verify --against, float-vs-device verify)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from snn2hw_emulator import engine
from test_compiler import exact_graph, spikes_in

from snn2hw import compiler, devices, verify
from snn2hw.compare import Divergence, Unmatched, first_divergence
from snn2hw.errors import UserInputError
from snn2hw.testing import HardwareInTheLoop

ALL = ("spikes", "u", "v")


@pytest.fixture(scope="module")
def compiled() -> compiler.Compiled:
    return compiler.compile(exact_graph(np.random.default_rng(11), 6, 10, 4, recurrent=True,
                                        conv=False))


def _without(result: engine.Result, var: str, group: str) -> engine.Result:
    return dataclasses.replace(result, **{var: {g: a for g, a in getattr(result, var).items()
                                                if g != group}})


def test_missing_group_or_variable_is_not_identical(compiled: compiler.Compiled) -> None:
    program = compiled.program
    x = spikes_in(np.random.default_rng(1), compiled.graph, 2, 12)
    ports = {program.ports[0].name: x.reshape(2, 12, -1).astype(np.int64)}
    full = engine.run(program, ports, record=ALL)
    assert first_divergence(full, full) is None
    group = program.groups[0].name
    for var in ALL:
        lacking = _without(full, var, group)
        div = first_divergence(full, lacking, names=("emulator", "board"))
        assert isinstance(div, Unmatched) and (div.variable, div.group) == (var, group)
        assert f"{var} of group '{group}' was recorded by emulator but not by board" in str(div)
        assert "recorded by board but not by emulator" in str(
            first_divergence(lacking, full, names=("emulator", "board")))
    nothing = dataclasses.replace(full, u={}, v={})
    div = first_divergence(nothing, nothing)
    assert isinstance(div, Unmatched) and div.variable == "u" and "neither" in str(div)
    assert first_divergence(nothing, nothing, variables=("spikes",)) is None
    cut = dataclasses.replace(full, v={g: a[:, :5] for g, a in full.v.items()})
    assert "has shape" in str(first_divergence(full, cut))
    changed = dataclasses.replace(full, v={g: a + (g == group) for g, a in full.v.items()})
    div = first_divergence(full, changed)
    assert isinstance(div, Divergence) and div.group == group and div.variable == "v"


class ForgetsStates(devices.EmulatorDevice):
    """A device that records no u or v for group 'h' (as a faulty board runner might)."""

    name = "forgets-h"

    def _run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        res = super()._run(*args, **kwargs)
        return dataclasses.replace(res, u={g: a for g, a in res.u.items() if g != "h"},
                                   v={g: a for g, a in res.v.items() if g != "h"})


def test_hil_assert_identical_fails_on_a_missing_group(compiled: compiler.Compiled) -> None:
    devices.register("forgets-h", ForgetsStates)
    x = spikes_in(np.random.default_rng(2), compiled.graph, 2, 12)
    hil = HardwareInTheLoop()
    runs = hil.run(compiled, x, devices=("emulator", "forgets-h"))
    with pytest.raises(AssertionError, match="u of group 'h' was recorded by emulator but "
                                             "not by forgets-h"):
        runs.assert_identical()
    alone = hil.run(compiled, x, devices=("emulator",))
    with pytest.raises(AssertionError, match="two different devices"):
        alone.assert_identical()
    with pytest.raises(AssertionError, match="two different devices"):
        runs.assert_identical("emulator", "emulator")


def test_verify_against_fails_on_a_missing_group(compiled: compiler.Compiled) -> None:
    devices.register("forgets-h", ForgetsStates)
    devices.register("emulator-event", lambda: devices.EmulatorDevice(mode="event"))
    x = spikes_in(np.random.default_rng(3), compiled.graph, 3, 10)
    same = verify.compare_devices(compiled.program, x, None, device="emulator-event",
                                  against="emulator")
    assert same.divergence is None and "bit-identical" in same.table()
    with pytest.raises(UserInputError, match="with itself"):
        verify.compare_devices(compiled.program, x, None, device="emulator", against="emulator")
    comp = verify.compare_devices(compiled.program, x, None, device="forgets-h",
                                  against="emulator")
    assert isinstance(comp.divergence, Unmatched)
    assert "bit-identical" not in comp.table()
    assert "u of group 'h' was recorded by emulator but not by forgets-h" in comp.table()


def test_float_verify_fails_when_a_population_is_missing() -> None:
    rng = np.random.default_rng(4)
    graph = exact_graph(rng, 6, 10, 4, recurrent=False, conv=False)
    program = compiler.compile(graph).program
    x = spikes_in(rng, graph, 2, 10)
    report, _ = verify.verify(graph, program, x)
    assert [layer.population for layer in report.layers] == ["h", "o"]
    rename = {"h": "hidden"}                      # the same network under another name
    other = graph.replace(nodes={rename.get(n, n): v for n, v in graph.nodes.items()},
                          edges=tuple((rename.get(a, a), rename.get(b, b))
                                      for a, b in graph.edges))
    with pytest.raises(UserInputError, match="population 'h' spikes in the emulator but not "
                                             "on the float reference"):
        verify.verify(other, program, x)


class ForgetsSpikes(devices.EmulatorDevice):
    """A device whose result lacks group 'h' altogether (a runner that recorded nothing)."""

    name = "forgets-h-spikes"

    def _run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        res = super()._run(*args, **kwargs)
        return dataclasses.replace(res, spikes={g: a for g, a in res.spikes.items() if g != "h"})


def test_a_device_result_without_a_group_is_a_device_error(compiled: compiler.Compiled) -> None:
    devices.register("forgets-h-spikes", ForgetsSpikes)
    x = spikes_in(np.random.default_rng(5), compiled.graph, 2, 10)
    with pytest.raises(devices.DeviceError, match="'forgets-h-spikes' returned no spikes for "
                                                  "group 'h'"):
        verify.compare_devices(compiled.program, x, None, device="forgets-h-spikes",
                               against="emulator")
