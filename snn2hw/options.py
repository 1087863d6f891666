"""Compile options: one frozen record, checked when it is made against the same constants
the command line offers as its choices and ranges (``snn2hw/cli_args.py`` imports them
from here), so that a value no pass can use is refused from Python as from the CLI, in
one line naming the option. The ANN conversion's choices live here too: the CLI offers
them and ``importers.Conversion`` checks against them.

A light module (it imports only :mod:`snn2hw.errors`): the CLI reads it at start-up.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

from snn2hw.errors import UserInputError

#: ``--approximate``: Loihi targets' (passes/discretise.py, passes/quantise.py) ...
LOIHI_APPROXIMATIONS = ("reset-to-zero", "cuba-bias", "threshold-ge")
#: ... and Xylo's (its IAF neuron, docs/xylo.md).
XYLO_APPROXIMATIONS = ("xylo-neuron",)
APPROXIMATIONS = LOIHI_APPROXIMATIONS + XYLO_APPROXIMATIONS
SHARE_SCOPES = ("layer", "neuron")        # --share-scope: a codebook per block or per row
SHARE_METHODS = ("kmeans", "uniform")     # how the K shared values are chosen
ROUNDINGS = ("nearest", "floor")          # weights, thresholds and biases to integers
#: Ranges (low, high) of the whole-number options; None: no upper limit.
WEIGHT_BITS = (2, 32)       # a sign and a magnitude bit; the target's maximum is checked later
SHARE = (1, 65536)          # values per codebook
SCALE_GROUPS = (1, 65536)   # groups per population
INPUT_BITS = (2, 32)        # bits of a signed payload; the target's width is checked later
DT_MAX = 1.0                # seconds per step (dt > 0)

#: ANN conversion (``importers.Conversion``; import, compile and verify take an ANN file):
#: rate-coded IF neurons (importers/ann.py) or sigma-delta neurons (importers/ann_sdnn.py),
NEURONS = ("if", "sigma-delta")
#: an IF neuron's reset, to zero (Loihi) or by subtraction, the input's rate code,
RESETS = ("zero", "subtract")
ENCODINGS = ("bernoulli", "current")
#: and the approximations a conversion may accept (importers/layers.py).
ANN_APPROXIMATIONS = ("maxpool-as-avgpool",)


@dataclass(frozen=True)
class Options:
    target: str = "loihi2"
    dt: float | None = None
    weight_bits: int | None = None          # default: the target's maximum
    share: int | None = None                # K shared values per scope
    share_scope: str = "layer"
    share_method: str = "kmeans"
    keep_conv: bool = True
    scale_groups: int = 1                   # >1: finer quantisation granularity
    netx: bool = False                      # quantise so the program exports to netx .net
    rounding: str = "nearest"
    approximations: tuple[str, ...] = ()
    allow_saturation: bool = False
    verify_each: bool = False               # run the level's verifier after every pass
    dump_ir: str | None = None              # write every level, in its own form, here
    input_bits: int | None = None           # graded input ports of this many bits

    def __post_init__(self) -> None:
        """Refuse values no pass can use, naming the option (the CLI offers the same)."""
        _whole("weight_bits", self.weight_bits, WEIGHT_BITS, "a sign and a magnitude bit; "
               "None: the target's maximum")
        _whole("share", self.share, SHARE, "values per scope; None: no sharing")
        _whole("scale_groups", self.scale_groups, SCALE_GROUPS, "groups per population",
               optional=False)
        _whole("input_bits", self.input_bits, INPUT_BITS, "bits of a signed payload; None: "
               "what the graph's Input nodes declare, else binary spikes")
        _dt(self.dt)
        _choice("share_scope", self.share_scope, SHARE_SCOPES)
        _choice("share_method", self.share_method, SHARE_METHODS)
        _choice("rounding", self.rounding, ROUNDINGS)
        _approximations(self.approximations)
        if not isinstance(self.target, str) or not self.target:
            raise UserInputError(f"Options(target={self.target!r}): target must be a target "
                                 "name or a .toml path", hint="See `snn2hw targets`.")

    def record(self) -> dict[str, Any]:
        """The options as the program image records them (input_bits only where set, so
        binary-input programs keep their images)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()
                if not (k == "input_bits" and v is None)}


def _whole(name: str, value: object, span: tuple[int, int], what: str,
           optional: bool = True) -> None:
    if value is None and optional:
        return
    low, high = span
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not low <= value <= high:
        raise UserInputError(f"Options({name}={value!r}): {name} must be a whole number in "
                             f"{low}..{high} ({what})", hint=f"Give {name} in {low}..{high}.")


def _dt(dt: object) -> None:
    if dt is not None and (isinstance(dt, bool) or not isinstance(dt, numbers.Real)
                           or not math.isfinite(dt) or not 0 < dt <= DT_MAX):
        raise UserInputError(f"Options(dt={dt!r}): dt must be a positive number of seconds, "
                             f"at most {DT_MAX:g}", hint="Give the time step, e.g. dt=1e-3, or "
                             "None for the model's own.")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserInputError(f"Options({name}={value!r}): {name} must be one of "
                             f"{', '.join(choices)}", hint=f"Choose from {', '.join(choices)}.")


def _approximations(values: object) -> None:
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, str) for v in values):
        raise UserInputError(f"Options(approximations={values!r}): approximations must be a "
                             "tuple of names", hint=f"Choose from {', '.join(APPROXIMATIONS)}.")
    for bad in values:
        if bad not in APPROXIMATIONS:
            raise UserInputError(f"Options(approximations={values!r}): unknown approximation "
                                 f"'{bad}'", hint=f"Choose from {', '.join(APPROXIMATIONS)}.")


def for_family(options: Options, family: str) -> None:
    """Refuse an approximation that belongs to another target family than ``family``."""
    own = XYLO_APPROXIMATIONS if family == "xylo-iaf" else LOIHI_APPROXIMATIONS
    bad = [a for a in options.approximations if a not in own]
    if bad:
        raise UserInputError(f"approximation '{bad[0]}' does not apply to {family} targets",
                             hint=f"Its approximations are {', '.join(own)}.")


__all__ = ["ANN_APPROXIMATIONS", "APPROXIMATIONS", "DT_MAX", "ENCODINGS", "INPUT_BITS",
           "LOIHI_APPROXIMATIONS", "NEURONS", "RESETS", "ROUNDINGS", "SCALE_GROUPS", "SHARE",
           "SHARE_METHODS", "SHARE_SCOPES", "WEIGHT_BITS", "XYLO_APPROXIMATIONS", "Options",
           "for_family"]
