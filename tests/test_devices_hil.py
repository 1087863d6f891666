"""The device interface, its errors, and the `hil` pytest fixture (snn2hw.testing)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_compiler import exact_graph, spikes_in

from snn2hw import compiler, devices
from snn2hw.errors import LavaEnvironmentError, UserInputError


def _compiled(target: str = "loihi2", seed: int = 11) -> compiler.Compiled:
    rng = np.random.default_rng(seed)
    return compiler.compile(exact_graph(rng, 6, 10, 4, recurrent=True, conv=False),
                            compiler.Options(target=target))


class PlantedFault(devices.EmulatorDevice):
    """A 'device' with one wrong synapse: neuron 2 of group 'o' gets +8 from source 3."""

    name = "planted"

    def load(self, program):  # type: ignore[override]
        block = next(b for b in program.blocks if b.target == "o")
        w = np.array(block.weights)
        w[2, 3] += 8
        broken = dataclasses.replace(program, blocks=tuple(
            dataclasses.replace(b, weights=w) if b is block else b for b in program.blocks))
        return super().load(broken)


def test_registered_device_and_planted_divergence_through_the_fixture(hil) -> None:
    devices.register("planted", PlantedFault)
    devices.register("emulator-event", lambda: devices.EmulatorDevice(mode="event"))
    compiled = _compiled()
    x = spikes_in(np.random.default_rng(1), compiled.graph, 2, 15)
    runs = hil.run(compiled, x, devices=("emulator", "planted"))
    with pytest.raises(AssertionError) as err:
        runs.assert_identical()
    text = str(err.value)
    assert "group 'o', neuron 2, variable u" in text
    step = int(text.split("at step ")[1].split(",")[0])
    h = runs.runs["emulator"].raw.spikes["h"]            # the planted synapse's source
    assert step == min(int(np.argmax(s)) for s in h[:, :, 3] if s.any()) + 2
    assert f"'o'[2] at step {step - 1}: u=" in text and "active input(s) arriving" in text
    runs_same = hil.run(compiled, x, devices=("emulator", "emulator-event"))
    runs_same.assert_identical()
    three = hil.run(compiled, x, devices=("emulator", "planted", "emulator-event"))
    with pytest.raises(AssertionError, match="planted differs from emulator"):
        three.assert_identical()                   # every device against the first
    three.assert_identical("emulator", "emulator-event")


def test_accuracy_assertion_names_devices(hil) -> None:
    compiled = _compiled()
    x = spikes_in(np.random.default_rng(2), compiled.graph, 4, 12)
    runs = hil.run(compiled, x, devices=("emulator",))
    with pytest.raises(AssertionError, match="accuracy below 100.00%: emulator"):
        runs.assert_accuracy(np.full(4, -1), at_least=1.0)


def test_unknown_device() -> None:
    with pytest.raises(UserInputError, match="unknown device 'npu'"):
        devices.get("npu")


def test_board_refuses_a_program_for_another_target_before_running() -> None:
    with pytest.raises(devices.DeviceError, match="cannot run a program for target 'loihi1'"):
        devices.get("loihi2-board").load(_compiled("loihi1").program)


def test_missing_lava_environment_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SNN2HW_LAVA_PYTHON", raising=False)
    with pytest.raises(LavaEnvironmentError, match="snn2hw lava install"):
        devices.get("lava").load(_compiled().program)


@pytest.mark.lava
def test_board_without_loihi_extension_says_how_to_install() -> None:
    with pytest.raises(devices.DeviceError, match="lava-loihi"):
        devices.get("loihi2-board").load(_compiled().program)


@pytest.mark.lava
@pytest.mark.slow
def test_hil_fixture_emulator_equals_lava(hil) -> None:
    compiled = hil.compile(exact_graph(np.random.default_rng(5), 6, 12, 4, recurrent=True,
                                       conv=True), target="loihi2")
    x = spikes_in(np.random.default_rng(6), compiled.graph, 2, 12)
    runs = hil.run(compiled, x, devices=("emulator", "lava"))
    runs.assert_identical()
    assert runs.accuracy(np.zeros(2, int), "lava") == runs.accuracy(np.zeros(2, int),
                                                                     "emulator")
