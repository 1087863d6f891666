"""The input contract of every device: port -> (batch, time, size) integers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.program import Program


def check_inputs(program: Program, inputs: Any, steps: int | None) -> tuple[dict[str, np.ndarray],
                                                                          int, int]:
    """The input contract of every device: port -> (B, T, size) integers; binary ports
    hold 0/1, graded payloads saturate at the port's message width. Returns
    (data, batch, steps)."""
    ports = {p.name: p for p in program.ports}
    if not isinstance(inputs, Mapping):
        if len(ports) != 1:
            raise InputError(f"the program has {len(ports)} input ports; pass a dict "
                             "port name -> array")
        inputs = {next(iter(ports)): inputs}
    unknown = sorted(set(inputs) - set(ports))
    if unknown:
        raise InputError(f"input '{unknown[0]}' is not a port of the program",
                         hint=f"Ports: {', '.join(ports)}.")
    data: dict[str, np.ndarray] = {}
    batch = t_in = None
    for name, port in ports.items():
        if name not in inputs:
            raise InputError(f"no input for port '{name}'", hint="Pass (batch, time, size).")
        arr = np.asarray(inputs[name])
        if arr.ndim != 3 or arr.shape[2] != port.size:
            raise InputError(f"input '{name}' has shape {arr.shape}; expected (batch, time, "
                             f"{port.size})")
        if arr.dtype.kind not in "biu" and not (arr.dtype.kind == "f" and
                                                 np.all(arr == np.round(arr))):
            raise InputError(f"input '{name}' must hold integers (got {arr.dtype} with "
                             "fractions)", hint="Spikes are 0/1; graded payloads are integers.")
        if port.message_bits == 0:
            if arr.size and not _binary(arr):
                raise InputError(f"input '{name}' is a binary spike port but holds values in "
                                 f"{arr.min()}..{arr.max()}",
                                 hint="Pass 0/1 spikes, or compile with graded input.")
            arr = arr.astype(np.int8, copy=False)   # 0/1: an eighth of int64's traffic
        else:  # graded payloads saturate at the port's message width (documented)
            hi = 2 ** (port.message_bits - 1) - 1
            arr = np.clip(arr.astype(np.int64), -hi - 1, hi)
        if batch is not None and arr.shape[:2] != (batch, t_in):
            raise InputError("all input ports need the same batch and time sizes")
        batch, t_in = arr.shape[0], arr.shape[1]
        data[name] = arr
    steps = t_in if steps is None else int(steps)
    if steps < 0:
        raise InputError(f"steps={steps} must be >= 0")
    return data, int(batch or 0), steps


def _binary(arr: np.ndarray) -> bool:
    """All values 0 or 1; one pass for 1-byte integers (as unsigned: -1 is 255 > 1)."""
    if arr.dtype.itemsize == 1 and arr.dtype.kind in "biu":
        return int(arr.view(np.uint8).max()) <= 1
    return bool(arr.min() >= 0 and arr.max() <= 1)
