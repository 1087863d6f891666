"""One interface for everything that executes a program image.

    dev = devices.get("lava")          # "emulator", "lava", "loihi2-board", "netx", or registered
    dev.load(program)                  # checks target and installation before any run
    result = dev.run(inputs, steps=None, record=("spikes", "u", "v"))
    result.spikes / .u / .v            # group -> (B, T, n), the emulator's shapes
    dev.reset()                        # forget the loaded program

Every ``run`` starts from the program's initial state (u0, v0), one independent network
per sample, so runs are reproducible and devices comparable step for step.

Extension point: a board (or another simulator) is a class with ``name``, ``families``,
``targets`` (None: any target of those families), ``records`` and ``available()``
(raises :class:`DeviceError` saying how to install it), plus ``_run``. Register it with
:func:`register` and it is usable everywhere a device name is taken, including
``snn2hw run/verify --device``. ``loihi2-board`` below is such a device: it runs the
emitted Lava program with Lava's hardware run configuration when Intel's Loihi extension
for Lava is installed in the Lava environment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from snn2hw.errors import DeviceError, UserInputError

if TYPE_CHECKING:        # this module is imported by `snn2hw --help`: no numpy at import
    import numpy as np
    from snn2hw_emulator.program import Program
    from snn2hw_emulator.result import RunResult
    from snn2hw_emulator.xylo_program import XyloProgram

    #: what a device runs: a program image of either family
    AnyProgram: TypeAlias = Program | XyloProgram
    #: what a device takes: port -> (B, T, size) integers, or one array (one port)
    Inputs: TypeAlias = Mapping[str, np.ndarray] | np.ndarray


class Device:
    name = "device"
    families: tuple[str, ...] = ("loihi-lif",)
    targets: tuple[str, ...] | None = None
    records: tuple[str, ...] = ("spikes", "u", "v")
    #: Runs Lava's fixed-point models, whose widths are fixed (family.LAVA): a target
    #: with other arithmetic widths is refused, naming the key.
    lava_arithmetic = False

    def __init__(self) -> None:
        self.program: AnyProgram | None = None

    def available(self) -> None:
        """Raise DeviceError (with how to install it) if this device cannot run here."""

    def check(self, program: AnyProgram) -> None:
        from snn2hw_emulator.validate import target_of

        target = target_of(program)          # the embedded target file, validated
        if target.family not in self.families or (self.targets is not None and
                                                  program.target_name not in self.targets):
            want = ", ".join(self.targets or self.families)
            raise DeviceError(f"device '{self.name}' cannot run a program for target "
                              f"'{program.target_name}' (family {target.family}); it runs "
                              f"{want}", hint="Compile for a target this device supports, "
                                              "or choose another --device.")
        differs = target.numeric.lava_mismatches() if self.lava_arithmetic else []
        if differs:
            key, value, lava = differs[0]
            raise DeviceError(f"device '{self.name}' cannot run a program for target "
                              f"'{program.target_name}': its numeric.{key} = {value}, and "
                              f"Lava's fixed-point models hard-wire {key} = {lava}",
                              hint="Run it on the emulator (--device emulator), or compile "
                                   "for a target with Lava's widths (loihi2, loihi1).")
        self.available()

    def load(self, program: AnyProgram) -> Device:
        self.check(program)
        self.program = program
        return self

    def reset(self) -> None:
        self.program = None

    def run(self, inputs: Inputs, *, steps: int | None = None,
            record: Sequence[str] = ("spikes",), progress: bool = False) -> RunResult:
        if self.program is None:
            raise UserInputError(f"device '{self.name}' has no program loaded",
                                 hint="Call load(program) first.")
        bad = sorted(set(record) - set(self.records))
        if bad:
            raise DeviceError(f"device '{self.name}' cannot read '{bad[0]}'",
                              hint=f"It records: {', '.join(self.records)}.")
        return self._run(inputs, steps, tuple(record), progress)

    def _run(self, inputs: Inputs, steps: int | None, record: tuple[str, ...],
             progress: bool) -> RunResult:
        raise NotImplementedError


class EmulatorDevice(Device):
    """snn2hw's bit-accurate emulator (batch mode; ``mode="event"`` gives identical
    results). ``accelerator``: "cpu" (numpy and numba), or batch mode in torch on "cuda"
    (a CUDA GPU) or "cpu-torch" (the same torch code on the CPU); identical results."""

    name = "emulator"
    families = ("loihi-lif", "xylo-iaf")
    # engine.RECORDABLE, and a Xylo program's synaptic currents (xylo_program.RECORDABLE)
    records = ("spikes", "u", "v", "sigma", "act", "residue", "error", "i_syn", "i_syn2")

    def __init__(self, mode: str = "batch", accelerator: str = "cpu") -> None:
        super().__init__()
        self.mode = mode
        self.accelerator = accelerator

    def available(self) -> None:
        if self.accelerator == "cpu":
            return
        from snn2hw_emulator import torchengine
        from snn2hw_emulator.errors import InputError

        try:
            torchengine.device(self.accelerator)
        except InputError as exc:   # no torch, no CUDA: a one-line DeviceError (exit 2)
            raise DeviceError(exc.message, hint=exc.hint) from None

    def _run(self, inputs: Inputs, steps: int | None, record: tuple[str, ...],
             progress: bool) -> RunResult:
        import numpy as np
        from snn2hw_emulator import engine
        from snn2hw_emulator.xylo_program import XyloProgram

        program = self.program
        assert program is not None                # run(): a program is loaded

        def run(part: Inputs) -> RunResult:
            return engine.run(program, part, steps=steps, record=record, mode=self.mode,
                              accelerator=self.accelerator)
        if not isinstance(inputs, Mapping):       # a bare array for a one-port program
            ports = ["input"] if isinstance(program, XyloProgram) else \
                [p.name for p in program.ports]
            if len(ports) != 1:
                return run(inputs)                # the engine says what it needs
            inputs = {ports[0]: inputs}
        batch = np.shape(next(iter(inputs.values())))[0]
        if not (progress and sys.stderr.isatty() and batch >= 8):
            return run(inputs)
        return _with_progress(run, inputs, batch)


def _with_progress(run: Callable[[Inputs], RunResult], inputs: Mapping[str, np.ndarray],
                   batch: int) -> RunResult:
    """``run`` on the batch in 20 slices, with a progress bar on stderr; one result."""
    from snn2hw_emulator.result import concatenate

    chunk = max(1, batch // 20)
    parts = []
    for start in range(0, batch, chunk):
        parts.append(run({k: v[start:start + chunk] for k, v in inputs.items()}))
        _progress(min(start + chunk, batch), batch)
    return concatenate(parts)


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} samples")
    sys.stderr.flush()
    if done == total:
        sys.stderr.write("\n")


class LavaDevice(Device):
    """Lava 0.10's fixed-point CPU models (``Loihi2SimCfg(select_tag="fixed_pt")``), run in
    the Lava environment (see ``snn2hw lava status``)."""

    name = "lava"
    hardware = False
    lava_arithmetic = True
    records = EmulatorDevice.records          # sigma-delta state too (SigmaDelta's Vars)

    def available(self) -> None:
        from snn2hw import lava_env

        lava_env.interpreter()     # LavaEnvironmentError names what was tried and the fix

    def _run(self, inputs: Inputs, steps: int | None, record: tuple[str, ...],
             progress: bool) -> RunResult:
        from snn2hw_emulator.program import Program

        from snn2hw.backends import lava

        program = self.program
        assert isinstance(program, Program)      # check(): the Loihi family only
        return lava.run(program, inputs, steps=steps, record=record, hardware=self.hardware)


_LOIHI_PROBE = ("from lava.utils import loihi; import sys; "
                "sys.exit(0 if loihi.is_installed() else 1)")


class LoihiBoardDevice(LavaDevice):
    """A Loihi 2 system through Intel's Loihi extension for Lava (``Loihi2HwCfg``)."""

    name = "loihi2-board"
    targets = ("loihi2",)
    hardware = True

    def available(self) -> None:
        from snn2hw import lava_env

        python = lava_env.interpreter()
        if lava_env.runs(python, _LOIHI_PROBE) is None:
            raise DeviceError(
                f"no Loihi 2 board: Intel's Loihi extension for Lava (lava-loihi) is not "
                f"installed in the Lava environment {python}",
                hint="Install lava-loihi there (Intel INRC members), or point "
                     "SNN2HW_LAVA_PYTHON at an interpreter that has it; the 'lava' device "
                     "runs the same program on Lava's CPU models.")


class NetxDevice(Device):
    """lava-dl's own netx (``hdf5.Network``) on Lava's fixed-point CPU models, running the
    ``.net`` file a program was compiled from (``snn2hw compile MODEL.net``), in the Lava
    environment with lava-dl (``snn2hw lava install --netx``)."""

    name = "netx"
    records = EmulatorDevice.records          # SDNN files: sigma, act, residue, error too
    lava_arithmetic = True

    def available(self) -> None:
        from snn2hw import lava_env

        lava_env.netx_interpreter()  # LavaEnvironmentError says how to install lava-dl

    def check(self, program: AnyProgram) -> None:
        from snn2hw.backends.netx_run import META_KEY, netx_info

        if META_KEY not in program.metadata:
            raise DeviceError("device 'netx' runs the .net file a program was compiled "
                              "from, and this program was not compiled from one",
                              hint="Pass the .net file itself (snn2hw verify MODEL.net "
                                   "--device netx), or choose another --device.")
        if netx_info(program) is None:
            raise DeviceError(f"the program's '{META_KEY}' metadata is not what compiling a "
                              ".net file writes (JSON with source, input_lag, groups, "
                              "u_differs)", hint="Recompile the .net file (snn2hw compile "
                                                 "MODEL.net).")
        super().check(program)

    def _run(self, inputs: Inputs, steps: int | None, record: tuple[str, ...],
             progress: bool) -> RunResult:
        from snn2hw_emulator.program import Program

        from snn2hw.backends.netx_run import run_program

        program = self.program
        assert isinstance(program, Program)      # check(): compiled from a .net file
        return run_program(program, inputs, steps, record)


class XylosimDevice(Device):
    """SynSense's bit-accurate Xylo simulator, xylosim 0.1.3 (``xylosim.v2``), built from
    the program's integers as Rockpool's ``XyloSim.from_specification`` builds it
    (snn2hw/backends/xylosim.py). Install: ``pip install 'snn2hw[xylo]'``."""

    name = "xylosim"
    families = ("xylo-iaf",)
    records = ("spikes", "v", "i_syn", "i_syn2")

    def available(self) -> None:
        from snn2hw.backends import xylosim

        try:
            xylosim.module()
        except xylosim.XylosimMissing as exc:
            raise DeviceError(exc.message, hint=exc.hint) from None

    def _run(self, inputs: Inputs, steps: int | None, record: tuple[str, ...],
             progress: bool) -> RunResult:
        from snn2hw_emulator.xylo_program import XyloProgram

        from snn2hw.backends import xylosim

        program = self.program
        assert isinstance(program, XyloProgram)  # check(): the Xylo family only
        return xylosim.run(program, inputs, steps, record)


_REGISTRY: dict[str, Callable[[], Device]] = {
    "emulator": EmulatorDevice, "lava": LavaDevice, "loihi2-board": LoihiBoardDevice,
    "netx": NetxDevice, "xylosim": XylosimDevice,
}


def register(name: str, factory: Callable[[], Device]) -> None:
    """Make a device usable by name (``snn2hw run/verify --device NAME``, :func:`get`)."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str, accelerator: str | None = None, mode: str = "batch") -> Device:
    """The device called ``name``; ``accelerator`` and ``mode`` (the emulator only; other
    devices ignore the mode): where and how it computes, "cpu" (default), "cuda" or
    "cpu-torch"; "batch" (default) or "event" (:class:`EmulatorDevice`)."""
    if name not in _REGISTRY:
        raise UserInputError(f"unknown device '{name}'",
                             hint=f"Known devices: {', '.join(_REGISTRY)}.")
    if accelerator not in (None, "cpu"):
        if name != "emulator":
            raise UserInputError(f"device '{name}' has no accelerator option "
                                 f"('{accelerator}')", hint="Only --device emulator runs "
                                 "on an accelerator; leave --accelerator at cpu.")
        return EmulatorDevice(mode, accelerator)
    if name == "emulator" and _REGISTRY[name] is EmulatorDevice:
        return EmulatorDevice(mode)
    return _REGISTRY[name]()


def run(program: AnyProgram, inputs: Inputs, *, device: str, steps: int | None = None,
        record: Sequence[str] = ("spikes",), progress: bool = False,
        accelerator: str | None = None, mode: str = "batch") -> RunResult:
    """Load ``program`` on the named device and run it once (the emulator in ``mode`` on
    ``accelerator``)."""
    return get(device, accelerator, mode).load(program).run(inputs, steps=steps,
                                                            record=record, progress=progress)


__all__ = [
    "Device",
    "DeviceError",
    "EmulatorDevice",
    "LavaDevice",
    "LoihiBoardDevice",
    "NetxDevice",
    "XylosimDevice",
    "get",
    "names",
    "register",
    "run",
]
