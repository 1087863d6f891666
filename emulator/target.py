"""Hardware targets: a TOML file parsed into one frozen, validated :class:`Target`, shared by
the compiler (``snn2hw.targets`` is its view: shipped names, the listing), the emulator
(the file a program image embeds), the design rules and the devices.

Tables: ``[target]`` (name, description, family), ``[numeric]`` (the arithmetic family's
record, family.py), ``[core]``, ``[chip]``, ``[connectivity]``, ``[cost]``. Unknown and
missing tables and keys, values of the wrong type and values the family cannot honour are
one :class:`TargetFileError` naming the file and the key (``numeric.decay_bits``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import tomllib
from dataclasses import dataclass, fields
from typing import Any

from snn2hw_emulator.errors import TargetFileError
from snn2hw_emulator.family import FAMILIES, Family


@dataclass(frozen=True)
class TargetInfo:
    name: str
    description: str
    family: str


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


#: Table -> record type; ``numeric`` is the family's record (chosen by ``target.family``).
TABLES: dict[str, type | None] = {
    "target": TargetInfo, "numeric": None, "core": CoreLimits, "chip": ChipLimits,
    "connectivity": Connectivity, "cost": Cost,
}
#: Largest figure a [cost] entry may hold (a finite number of ns, pJ or mW).
COST_MAX = 1e30


@dataclass(frozen=True)
class Target:
    """A validated hardware target. ``numeric`` is its arithmetic family's record;
    ``toml`` the exact file text (embedded in programs), ``source`` where it came from."""

    target: TargetInfo
    numeric: Any                 # the family record: family.LoihiLif for "loihi-lif"
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
    def family(self) -> str:
        """The arithmetic family's name (``loihi-lif``); its record is ``numeric``."""
        return self.target.family

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.toml.encode()).hexdigest()

    @property
    def formats(self) -> dict[str, Any]:
        """The family's fixed-point formats (where the family describes them)."""
        return self.numeric.formats


# --------------------------------------------------------------------------- parsing


def _fail(source: str, message: str, hint: str | None = None) -> TargetFileError:
    return TargetFileError(f"{source}: {message}", hint=hint)


def _value(source: str, key: str, value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (the field's annotation), or an error naming the key."""
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _fail(source, f"key '{key}' must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(source, f"key '{key}' must be an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value) and 0 <= value < COST_MAX:
            return float(value)
        raise _fail(source, f"key '{key}' must be a number in 0..{COST_MAX:g}, got {value!r}")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise _fail(source, f"key '{key}' must be a string, got {value!r}")
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return tuple(value)                                  # tuple[int, int]
    raise _fail(source, f"key '{key}' must be a list of two positive integers, got {value!r}")


def _check_keys(source: str, data: dict[str, Any], known: list[str], what: str,
                known_hint: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise _fail(source, f"unknown {what.format(unknown[0])}", known_hint)
    missing = [k for k in known if k not in data]
    if missing:
        raise _fail(source, f"missing {what.format(missing[0])}",
                    "Every target file must state every limit; see targets/loihi2.toml.")


def _table(source: str, name: str, cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise _fail(source, f"[{name}] must be a table")
    kinds = {f.name: f.type for f in fields(cls) if f.init}
    _check_keys(source, data, list(kinds), f"key '{name}.{{}}'",
                f"Known keys in [{name}]: {', '.join(kinds)}.")
    return cls(**{k: _value(source, f"{name}.{k}", data[k], t) for k, t in kinds.items()})


def _family(source: str, info: TargetInfo) -> type[Family]:
    if info.family not in FAMILIES:
        raise _fail(source, f"key 'target.family' must be one of {tuple(FAMILIES)}, got "
                    f"'{info.family}'", "Each family is a record type in "
                    "snn2hw_emulator/family.py.")
    return FAMILIES[info.family]


def _check_ranges(t: Target) -> None:
    """Values the family cannot honour, then the resource figures."""
    rules = [(False, f"numeric.{key}", want) for key, want in t.numeric.problems()]
    rules += [
        (t.core.neurons_max >= 1, "core.neurons_max", ">= 1"),
        (t.core.synapse_memory_bits >= 0, "core.synapse_memory_bits", ">= 0"),
        (t.core.fan_in_axons_max >= 1, "core.fan_in_axons_max", ">= 1"),
        (t.core.fan_out_axons_max >= 1, "core.fan_out_axons_max", ">= 1"),
        (t.chip.cores_max >= 1, "chip.cores_max", ">= 1"),
        (t.chip.mesh[0] * t.chip.mesh[1] >= t.chip.cores_max, "chip.mesh",
         "a grid with at least cores_max places"),
        (t.chip.chips_max >= 1, "chip.chips_max", ">= 1"),
    ]
    for ok, key, want in rules:
        if not ok:
            raise _fail(t.source, f"key '{key}' must be {want}",
                        "Change the value in the target file (the figures the family can "
                        "run are in docs/contracts.md).")


def parse(text: str, source: str = "<string>") -> Target:
    """Validate target TOML text into a frozen :class:`Target`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, f"not valid TOML ({exc})") from None
    _check_keys(source, data, list(TABLES), "table '[{}]'", f"Known tables: "
                f"{', '.join(TABLES)}.")
    info = _table(source, "target", TargetInfo, data["target"])
    record = _family(source, info)
    tables = {name: info if name == "target" else
              _table(source, name, cls or record, data[name]) for name, cls in TABLES.items()}
    target = Target(**tables, toml=text, source=source)
    _check_ranges(target)
    return target


@functools.lru_cache(maxsize=64)
def parse_cached(text: str, source: str) -> Target:
    """:func:`parse`, once per distinct text (targets are frozen values)."""
    return parse(text, source)


__all__ = ["COST_MAX", "TABLES", "ChipLimits", "Connectivity", "CoreLimits", "Cost", "Target",
           "TargetInfo", "parse", "parse_cached"]
