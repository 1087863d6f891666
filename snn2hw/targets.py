"""Hardware targets, as the compiler sees them: shipped names, loading by name or path,
and the ``snn2hw targets`` listing.

The schema, the parser and the arithmetic family records are the emulator's
(:mod:`snn2hw_emulator.target`, :mod:`snn2hw_emulator.family`), because the emulator reads
the same file from every program image and imports nothing from the compiler. A target
file's problems are :class:`snn2hw.errors.TargetError` here, naming the file and the key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from snn2hw_emulator import target as _schema
from snn2hw_emulator.errors import TargetFileError
from snn2hw_emulator.family import FAMILIES, FixedFormat
from snn2hw_emulator.target import (
    ChipLimits,
    Connectivity,
    CoreLimits,
    Cost,
    Target,
    TargetInfo,
)

from snn2hw.errors import TargetError


def parse(text: str, source: str = "<string>") -> Target:
    """Validate target TOML text into a frozen :class:`Target`."""
    try:
        return _schema.parse(text, source)
    except TargetFileError as exc:
        raise TargetError(exc.message, hint=exc.hint) from None


def available() -> list[str]:
    """Names of the targets shipped with snn2hw."""
    root = resources.files("snn2hw_targets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load(name_or_path: str | Path) -> Target:
    """Load a shipped target by name (``loihi2``) or a target file by path."""
    text_path = Path(name_or_path)
    if text_path.suffix == ".toml" or text_path.exists():
        if not text_path.is_file():
            raise TargetError(f"target file '{text_path}' does not exist")
        try:
            text = text_path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            raise TargetError(f"target file '{text_path}' cannot be read as UTF-8 text "
                              f"({type(exc).__name__})", hint="Save it as a UTF-8 TOML file.") \
                from None
        return parse(text, str(text_path))
    name = str(name_or_path)
    if name not in available():
        raise TargetError(f"unknown target '{name}'",
                          hint=f"Available: {', '.join(available())}; or pass a .toml path.")
    res = resources.files("snn2hw_targets").joinpath(f"{name}.toml")
    return parse(res.read_text(encoding="utf-8"), f"targets/{name}.toml")


def _numeric_columns(t: Target) -> tuple[str, str, str, str]:
    """(weight bits, weight exponent/shift, state width, graded) of a target's family."""
    n = t.numeric
    if t.family == "xylo-iaf":
        return (f"{n.weight_bits - 1}+sign", f"<<0..{n.weight_shift_max}",
                f"{n.state_bits} b", "no")
    return (f"{n.weight_bits_max}+sign", f"{n.weight_exp_min}..{n.weight_exp_max}",
            f"{n.state_bits} b", f"{n.message_bits_max} b" if n.message_bits_max else "no")


def targets_table() -> str:
    """The `snn2hw targets` listing: one row per shipped target with its key limits."""
    header = ("target", "family", "neurons/core", "syn mem/core", "cores/chip", "chips",
              "weight bits", "wexp", "state", "graded", "conv", "cost")
    rows = [header]
    for name in available():
        t = load(name)
        rows.append((t.name, t.family, str(t.core.neurons_max),
                     f"{t.core.synapse_memory_bits // 8192} KiB", str(t.chip.cores_max),
                     str(t.chip.chips_max), *_numeric_columns(t),
                     "yes" if t.connectivity.conv else "no",
                     "estimated" if t.cost.estimated else "published"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


__all__ = ["FAMILIES", "ChipLimits", "Connectivity", "CoreLimits", "Cost", "FixedFormat",
           "Target", "TargetInfo", "available", "load", "parse", "targets_table"]
