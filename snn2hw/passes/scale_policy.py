"""The default range policy, said out loud: what a worst-case bound cost in precision.

Without calibration, quantise bounds every group's input sum and voltage by the worst
case (every source spiking at once, for as long as it takes to settle). Where that bound
does not fit the target's widths at the scale that uses the weights' full mantissa, the
scale is lowered until it fits (by powers of two it would only raise exponents; below the
full-mantissa scale the largest weights lose bits). That is the usable default: nothing
saturates and the program compiles. This pass reports it:

* a cost of at most :data:`SMALL_COST_BITS` mantissa bits: a warning that says so;
* a larger cost: a warning that asks for calibration data (``--calibrate X.npy``), whose
  observed bounds usually keep the full mantissa.

Unbounded voltages (no leak and inhibitory input) fit no scale: ``ranges`` refuses them
and asks for calibration.
"""

from __future__ import annotations

import warnings
from typing import Any

SMALL_COST_BITS = 2
BOUND_CAPS = ("voltage", "input sum")


def cost_bits(layer: dict[str, Any], weight_bits: int) -> int:
    """Mantissa bits the largest block of a group gives up to the worst-case bound."""
    if layer.get("limited_by") not in BOUND_CAPS:
        return 0
    used = [b["bits_used"] for b in layer.get("inputs", {}).values()
            if b.get("kind") != "conv"]
    return max(0, weight_bits - max(used, default=weight_bits))


def explain(report: dict[str, Any], weight_bits: int, calibrated: bool) -> list[str]:
    """One warning per group whose scale the worst-case bound lowered (none when the
    bounds came from calibration data: those are the user's own)."""
    if calibrated:
        return []
    notes = []
    for name, layer in report.items():
        cost = cost_bits(layer, weight_bits)
        if cost == 0:
            continue
        what = "|v|" if layer["limited_by"] == "voltage" else "per-step input sum"
        text = (f"'{name}': scale lowered so that the worst-case {what} fits the target; its "
                f"largest weights use {weight_bits - cost} of {weight_bits} bits")
        if cost > SMALL_COST_BITS:
            text += (" (a large precision cost: pass calibration data, --calibrate X.npy, so "
                     "that bounds come from observed activity)")
        notes.append(text)
    for text in notes:
        warnings.warn(f"range policy: {text}", stacklevel=3)
    return notes


__all__ = ["SMALL_COST_BITS", "cost_bits", "explain"]
