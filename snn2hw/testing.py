"""Hardware-in-the-loop tests in a few lines (a pytest plugin, loaded automatically once
snn2hw is installed; the fixture is ``hil``):

    def test_my_network_on_lava(hil):
        compiled = hil.compile("model.nir", target="loihi2")
        runs = hil.run(compiled, spikes, devices=("emulator", "lava"))
        runs.assert_identical()                      # every u, v and spike, every step
        runs.assert_accuracy(labels, at_least=0.95)  # on every device

Failures read like ``snn2hw verify``: the first divergence (step, sample, group,
neuron, variable, both values) and the inputs that fed that neuron on the step before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from snn2hw.devices import AnyProgram
    from snn2hw.execute import ModelInputs
    from snn2hw.iomap import AlignedResult
    from snn2hw.ir import Graph
    from snn2hw.outputs import AnyCompiled


@dataclass
class HilRuns:
    program: AnyProgram
    inputs: ModelInputs
    runs: dict[str, AlignedResult]   # device -> its run, model-shaped

    def assert_identical(self, a: str | None = None, b: str | None = None) -> None:
        """Every u, v and spike of ``b`` equals ``a`` at every step (default: every device
        against the first)."""
        from snn2hw.compare import explain, first_divergence

        names = list(self.runs)
        a = a or names[0]
        others = [b] if b else [n for n in names if n != a]
        if not others or a in others or not set(others + [a]) <= set(names):
            raise AssertionError(f"assert_identical compares two different devices that ran; "
                                 f"got {a!r} and {others} of {names}")
        for other in others:
            div = first_divergence(self.runs[a].raw, self.runs[other].raw, names=(a, other))
            if div is not None:
                detail = explain(self.program, self.runs[a].raw, div, self.runs[a].ports)
                raise AssertionError(f"{other} differs from {a}: {div}\n{detail}")

    def accuracy(self, labels: np.ndarray, device: str) -> float:
        from snn2hw import iomap
        from snn2hw.verify import decode

        io = iomap.read(self.program)
        name = next(iter(io.outputs))
        pred = decode(self.runs[device].outputs[name], io.outputs[name].readout)
        return float((pred == np.asarray(labels)).mean())

    def assert_accuracy(self, labels: np.ndarray, *, at_least: float,
                        devices: Sequence[str] | None = None) -> None:
        low = {d: self.accuracy(labels, d) for d in (devices or self.runs)}
        bad = {d: a for d, a in low.items() if a < at_least}
        if bad:
            raise AssertionError("accuracy below " f"{100 * at_least:.2f}%: " + ", ".join(
                f"{d} {100 * a:.2f}%" for d, a in bad.items()))


class HardwareInTheLoop:
    """What the ``hil`` fixture gives: compile a model, run it on several devices."""

    def compile(self, model: str | Path | Graph, target: str = "loihi2", *,
                calibration: np.ndarray | None = None, **options: Any) -> AnyCompiled:
        from snn2hw import compiler, nirio

        graph = nirio.read(model) if isinstance(model, (str, Path)) else model
        return compiler.compile(graph, compiler.Options(target=target, **options),
                                calibration=calibration)

    def run(self, compiled: AnyCompiled | AnyProgram, inputs: ModelInputs, *,
            devices: Sequence[str] = ("emulator", "lava")) -> HilRuns:
        from snn2hw import execute

        program = getattr(compiled, "program", compiled)
        runs = {d: execute.run(program, inputs, device=d, record_states=True) for d in devices}
        return HilRuns(program, inputs, runs)


@pytest.fixture
def hil() -> HardwareInTheLoop:
    """Compile models and run them on snn2hw devices (emulator, lava, boards)."""
    return HardwareInTheLoop()


__all__ = ["HardwareInTheLoop", "HilRuns", "hil"]
