"""Hardware targets: one TOML file per chip, loaded into frozen, validated objects.

The compiler reads hardware limits only from here (and the emulator reads the same
file, embedded in the program image). Unknown or missing keys are errors naming the
file and the key.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal

from snn2hw.errors import TargetError

FAMILIES = ("loihi-lif",)


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format as a value: width, fraction bits, sign, rounding, overflow."""

    bits: int
    frac_bits: int = 0
    signed: bool = True
    rounding: Literal["floor", "trunc", "nearest"] = "trunc"
    overflow: Literal["saturate", "wrap", "error"] = "saturate"

    @property
    def min_int(self) -> int:
        return -(2 ** (self.bits - 1)) + 1 if self.signed else 0

    @property
    def max_int(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    def contains(self, values: Any) -> bool:
        import numpy as np

        arr = np.asarray(values)
        return bool(np.all((arr >= self.min_int) & (arr <= self.max_int)))


@dataclass(frozen=True)
class TargetInfo:
    name: str
    description: str
    family: str


@dataclass(frozen=True)
class Numeric:
    weight_bits_max: int
    weight_exp_min: int
    weight_exp_max: int
    state_bits: int
    decay_bits: int
    vth_mant_bits: int
    bias_mant_bits: int
    bias_exp_max: int
    act_shift: int
    accumulator_bits: int
    message_bits_max: int
    delay_max: int


@dataclass(frozen=True)
class CoreLimits:
    neurons_max: int
    synapse_memory_bits: int
    fan_in_axons_max: int
    fan_out_axons_max: int


@dataclass(frozen=True)
class ChipLimits:
    cores_max: int
    mesh: tuple[int, int]
    chips_max: int


@dataclass(frozen=True)
class Connectivity:
    dense: bool
    sparse: bool
    conv: bool
    delays: bool
    graded_spikes: bool
    codebook: bool


@dataclass(frozen=True)
class Cost:
    synop_energy_pj: float
    synop_time_ns: float
    neuron_active_energy_pj: float
    neuron_active_time_ns: float
    neuron_inactive_energy_pj: float
    neuron_inactive_time_ns: float
    spike_energy_pj: float
    spike_time_ns: float
    hop_energy_pj: float
    hop_time_ns: float
    chip_hop_energy_pj: float
    chip_hop_time_ns: float
    barrier_time_ns: float
    static_power_mw: float
    estimated: bool


TABLES: dict[str, type] = {
    "target": TargetInfo, "numeric": Numeric, "core": CoreLimits,
    "chip": ChipLimits, "connectivity": Connectivity, "cost": Cost,
}


@dataclass(frozen=True)
class Target:
    """A validated hardware target. ``toml`` is the exact file text (embedded in programs)."""

    target: TargetInfo
    numeric: Numeric
    core: CoreLimits
    chip: ChipLimits
    connectivity: Connectivity
    cost: Cost
    toml: str
    source: str

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.toml.encode()).hexdigest()

    # Fixed-point formats of the Loihi LIF family, derived from the widths above.
    @property
    def formats(self) -> dict[str, FixedFormat]:
        n = self.numeric
        return {
            "weight": FixedFormat(n.weight_bits_max + 1, rounding="floor", overflow="saturate"),
            "u": FixedFormat(n.state_bits, frac_bits=n.act_shift, overflow="wrap"),
            "v": FixedFormat(n.state_bits, frac_bits=n.act_shift, overflow="saturate"),
            "decay": FixedFormat(n.decay_bits, frac_bits=n.decay_bits, signed=False),
            "vth_mant": FixedFormat(n.vth_mant_bits, signed=False),
            "bias_mant": FixedFormat(n.bias_mant_bits),
        }


def _check_value(where: str, key: str, value: Any, kind: Any) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise TargetError(f"{where}: key '{key}' must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TargetError(f"{where}: key '{key}' must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise TargetError(f"{where}: key '{key}' must be a non-negative number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise TargetError(f"{where}: key '{key}' must be a string, got {value!r}")
        return value
    # tuple[int, int]
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and v > 0 for v in value)):
        raise TargetError(f"{where}: key '{key}' must be a list of two positive integers, "
                          f"got {value!r}")
    return tuple(value)


def _check_keys(source: str, data: dict[str, Any], known: list[str],
                label: Callable[[str], str], known_hint: str) -> None:
    """Unknown and missing keys are errors naming the file and the key."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise TargetError(f"{source}: unknown {label(unknown[0])}", hint=known_hint)
    missing = [k for k in known if k not in data]
    if missing:
        raise TargetError(f"{source}: missing {label(missing[0])}",
                          hint="Every target file must state every limit; see targets/loihi2.toml.")


def _build_table(source: str, table: str, data: Any) -> Any:
    cls = TABLES[table]
    if not isinstance(data, dict):
        raise TargetError(f"{source}: [{table}] must be a table")
    names = [f.name for f in fields(cls)]
    _check_keys(source, data, names, lambda k: f"key '{table}.{k}'",
                f"Known keys in [{table}]: {', '.join(names)}.")
    kinds = {f.name: eval_type(f.type) for f in fields(cls)}
    return cls(**{k: _check_value(source, f"{table}.{k}", data[k], kinds[k]) for k in names})


def eval_type(annotation: Any) -> Any:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return {"int": int, "float": float, "bool": bool, "str": str}.get(text, tuple)


def _check_ranges(t: Target) -> None:
    n, src = t.numeric, t.source
    rules = [
        (t.target.family in FAMILIES, "target.family", f"one of {FAMILIES}"),
        (1 <= n.weight_bits_max <= 8, "numeric.weight_bits_max", "in 1..8"),
        (n.weight_exp_min <= n.weight_exp_max, "numeric.weight_exp_min", "<= weight_exp_max"),
        (8 <= n.state_bits <= 32, "numeric.state_bits", "in 8..32"),
        (1 <= n.decay_bits <= 16, "numeric.decay_bits", "in 1..16"),
        (0 <= n.message_bits_max <= 32, "numeric.message_bits_max", "in 0..32"),
        (0 <= n.delay_max <= 63, "numeric.delay_max", "in 0..63"),
        (t.core.neurons_max >= 1, "core.neurons_max", ">= 1"),
        (t.chip.cores_max >= 1, "chip.cores_max", ">= 1"),
        (t.chip.mesh[0] * t.chip.mesh[1] >= t.chip.cores_max, "chip.mesh",
         "a grid with at least cores_max places"),
        (t.chip.chips_max >= 1, "chip.chips_max", ">= 1"),
    ]
    for ok, key, want in rules:
        if not ok:
            raise TargetError(f"{src}: key '{key}' must be {want}")


def parse(text: str, source: str = "<string>") -> Target:
    """Validate target TOML text into a frozen :class:`Target`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{source}: not valid TOML ({exc})") from None
    _check_keys(source, data, list(TABLES), lambda k: f"table '[{k}]'",
                f"Known tables: {', '.join(TABLES)}.")
    tables = {name: _build_table(source, name, data[name]) for name in TABLES}
    target = Target(**tables, toml=text, source=source)
    _check_ranges(target)
    return target


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


def targets_table() -> str:
    """The `snn2hw targets` listing: one row per shipped target with its key limits."""
    header = ("target", "neurons/core", "syn mem/core", "cores/chip", "chips",
              "weight bits", "wexp", "state", "graded", "conv", "cost")
    rows = [header]
    for name in available():
        t = load(name)
        rows.append((t.name, str(t.core.neurons_max), f"{t.core.synapse_memory_bits // 8192} KiB",
                     str(t.chip.cores_max), str(t.chip.chips_max),
                     f"{t.numeric.weight_bits_max}+sign",
                     f"{t.numeric.weight_exp_min}..{t.numeric.weight_exp_max}",
                     f"{t.numeric.state_bits} b",
                     f"{t.numeric.message_bits_max} b" if t.numeric.message_bits_max else "no",
                     "yes" if t.connectivity.conv else "no",
                     "estimated" if t.cost.estimated else "published"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
