"""Validation of a Xylo program: its consistency (array shapes, integer types, format
version, embedded target), then its values against the target's ``xylo-iaf`` record
(family.XyloIaf) and every resource rule (xylo_rules.py) against the embedded target.

Consistency problems raise a ProgramError naming the first one; value and rule
violations are all reported together in one ProgramLimitError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from snn2hw_emulator import xylo_rules
from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError
from snn2hw_emulator.family import XyloIaf
from snn2hw_emulator.xylo_program import ARRAYS, FAMILY, SHIFTS, XYLO_VERSION, XyloProgram

REQUANTISE = "Recompile the model for this target."


def shape_problem(program: XyloProgram) -> str | None:
    """The first array or shift of the wrong type or shape, in one sentence (or None)."""
    for name, ndim in ARRAYS.items():
        arr = np.asarray(getattr(program, name))
        if arr.ndim != ndim or arr.dtype.kind not in "iu":
            return f"{name} must be a {ndim}-d integer array, got {arr.dtype} {arr.shape}"
    for name in SHIFTS:
        v = getattr(program, name)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            return f"{name} must be an integer, got {v!r}"
    n_in, nh, ns = np.shape(program.weights_in)
    no = np.shape(program.weights_out)[1]
    if ns not in (1, 2):
        return f"weights_in has {ns} synaptic currents per hidden neuron; Xylo has 1 or 2"
    want = {"weights_rec": (nh, nh, ns), "weights_out": (nh, no), "dash_mem": (nh,),
            "dash_syn": (nh, ns), "dash_mem_out": (no,), "dash_syn_out": (no,),
            "threshold": (nh,), "threshold_out": (no,), "bias": (nh,), "bias_out": (no,),
            "aliases": (nh,)}
    for name, shape in want.items():
        got = tuple(np.shape(getattr(program, name)))
        if got != shape:
            return (f"{name} has shape {got}; {n_in} inputs, {nh} hidden neurons with {ns} "
                    f"synaptic current(s) and {no} outputs need {shape}")
    return None


def value_problems(program: XyloProgram, record: XyloIaf) -> Iterator[str]:
    """One sentence per array or shift of a well-shaped ``program`` outside the record's
    ranges, and for alias indices outside the hidden range."""
    for name, (lo, hi) in record.ranges().items():
        raw = np.atleast_1d(np.asarray(getattr(program, name), dtype=np.int64))
        bad = np.argwhere((raw < lo) | (raw > hi))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            label = name if name in SHIFTS else f"{name}{list(where)}"
            yield (f"{label} = {int(raw[where])} is outside {lo}..{hi} "
                   f"({len(bad)} value(s) in all)")
    a = np.asarray(program.aliases, dtype=np.int64)
    if a.size and (a.min() < -1 or a.max() >= program.n_hidden):
        yield (f"aliases hold {int(a.min())}..{int(a.max())}; an alias is a hidden neuron "
               f"0..{program.n_hidden - 1}, or -1 for none")


def validate(program: XyloProgram, target: Any) -> None:
    """Raise a ProgramError naming the first inconsistency, then one ProgramLimitError
    listing every value and rule violation against ``target`` (the embedded file,
    parsed: validate.target_of)."""
    if hashlib.sha256(program.target_toml.encode()).hexdigest() != program.target_hash:
        raise ImageFormatError("the embedded target file does not match its hash "
                               "(the image was edited or is corrupt)",
                               hint="Recompile the model.")
    if program.format_version < XYLO_VERSION:
        raise ImageFormatError(f"a Xylo program needs format version {XYLO_VERSION} or "
                               f"later, not {program.format_version}",
                               hint="Recompile the model.")
    if target.family != FAMILY:
        raise ImageFormatError(f"a Xylo program embeds target '{target.name}' of family "
                               f"{target.family}, not {FAMILY}", hint="Recompile the model.")
    bad = shape_problem(program)
    if bad:
        raise ProgramLimitError(f"Xylo program: {bad}", hint=REQUANTISE)
    problems = list(value_problems(program, target.numeric))
    problems += [xylo_rules.describe(v) for v in xylo_rules.check(program, target)]
    if problems:
        raise ProgramLimitError(f"the program does not fit target '{target.name}' "
                                f"({len(problems)} problem(s)): " + "; ".join(problems),
                                hint=REQUANTISE)
