"""Files in and out of `snn2hw run`: program, input spikes, results.

Devices share one calling convention (docs/contracts.md): inputs are a dict
port -> int array (B, T, size); results hold spikes/u/v dicts of (B, T, n). Running is
the devices' (snn2hw.devices); this module only reads and writes files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from snn2hw_emulator.result import RECORDABLE as LOIHI_RECORDABLE
from snn2hw_emulator.xylo_program import RECORDABLE as XYLO_RECORDABLE

from snn2hw import files
from snn2hw.errors import UserInputError
from snn2hw.files import atomic_write

if TYPE_CHECKING:
    from snn2hw_emulator.result import RunResult

    from snn2hw.devices import AnyProgram

#: What `snn2hw run --record` takes: the Loihi family's variables and Xylo's currents.
RECORDABLE = tuple(dict.fromkeys(LOIHI_RECORDABLE + XYLO_RECORDABLE))


def load_program(path: str | Path) -> AnyProgram:
    from snn2hw_emulator import image

    if files.sniff(path) != "program":
        raise UserInputError(f"'{path}' is a NIR model, not a program image",
                             hint="Compile it first with `snn2hw compile`, then run the program.")
    return image.load(path)


def parse_record(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in RECORDABLE]
    if unknown or not names:
        raise UserInputError(f"--record {text!r} names {', '.join(unknown) or 'nothing'}",
                             hint=f"Use a comma-separated subset of {', '.join(RECORDABLE)}.")
    return names if "spikes" in names else ("spikes", *names)


def _read_array_file(path: Path) -> dict[str, np.ndarray] | np.ndarray:
    from snn2hw import arrays

    data = arrays.load(path, what="input file")
    if isinstance(data, np.ndarray):
        return arrays.finite(data, path)
    return {k: arrays.finite(v, path, f"array '{k}' ") for k, v in data.items()}


def _batched(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim != 3:
        raise UserInputError(f"input for port '{name}' has shape {arr.shape}",
                             hint="Use (T, n) for one sample or (B, T, n) for a batch.")
    return arr


def load_inputs(path: str | Path, program: AnyProgram) -> dict[str, np.ndarray]:
    data = _read_array_file(Path(path))
    ports = [p.name for p in program.ports]
    if isinstance(data, np.ndarray):
        if len(ports) != 1:
            raise UserInputError(f"the program has {len(ports)} input ports ({', '.join(ports)}) "
                                 "but the input is a single array",
                                 hint="Pass an .npz with one array per port name.")
        data = {ports[0]: data}
    missing = sorted(set(ports) - set(data))
    extra = sorted(set(data) - set(ports))
    if missing or extra:
        raise UserInputError(f"input arrays {sorted(data)} do not match the program's ports "
                             f"{ports}", hint="Name the .npz arrays after the input ports.")
    out = {k: _batched(k, np.asarray(v)) for k, v in data.items()}
    for p in program.ports:
        if p.message_bits:               # graded: integer payloads inside the message width
            from snn2hw.sdnn import check_payloads

            check_payloads(p.name, out[p.name], p.message_bits)
    return out


def result_arrays(result: RunResult) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for var in RECORDABLE:
        for group, arr in (getattr(result, var, None) or {}).items():
            arrays[f"{var}.{group}"] = np.asarray(arr)
    return arrays


def save_result(result: RunResult, path: str | Path) -> None:
    """Write the result atomically (nothing half-written on failure)."""
    arrays = result_arrays(result)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    atomic_write(path, write, what="--output")


def result_summary(result: RunResult, program: AnyProgram, path: str | Path) -> str:
    lines = []
    for out in program.outputs:
        spikes = np.asarray(result.spikes[out.group])
        sent = int(np.count_nonzero(spikes))          # graded payloads: spikes sent, not summed
        lines.append(f"output '{out.name}' (group {out.group}): {sent} spikes over "
                     f"{spikes.shape[0]} sample(s) x {spikes.shape[1]} steps")
    if result.cost is not None:
        lines.append(result.cost.summary())
    lines.append(f"results written to {path}")
    return "\n".join(lines)
