"""Range-checked argument types for the command line, and a parser whose errors are one
line: a value out of range stops argparse (exit 2) before anything runs or is written."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

from snn2hw import options
from snn2hw.options import (
    ANN_APPROXIMATIONS,
    APPROXIMATIONS,
    ENCODINGS,
    NEURONS,
    RESETS,
    SHARE_SCOPES,
)

MAX_STEPS = 1_000_000         # timesteps of one run; more would not fit memory as records


def integer(name: str, low: int, high: int | None, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (None: no upper limit)."""
    span = f"{low}..{high}" if high is not None else f"{low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (use {span})"
                                             ) from None
        if value < low or (high is not None and value > high):
            where = f"outside {span}" if high is not None else f"below {low}"
            raise argparse.ArgumentTypeError(f"{value} is {where}"
                                             + (f" ({why})" if why else ""))
        return value
    parse.__name__ = name             # argparse names the type in its own messages
    return parse


def real(name: str, low: float, high: float, *, open_low: bool = False,
         why: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] if ``open_low``)."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value > low if open_low else value >= low
        if not (math.isfinite(value) and above and value <= high):
            span = f"{'(' if open_low else '['}{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"{text} is outside {span}"
                                             + (f" ({why})" if why else ""))
        return value
    parse.__name__ = name
    return parse


STEPS = integer("--steps", 1, MAX_STEPS, "timesteps")
PERCENTILE = real("--percentile", 0.0, 100.0, open_low=True, why="a percentile of the "
                  "positive activations")
DT = real("--dt", 0.0, options.DT_MAX, open_low=True, why="seconds per step")
WEIGHT_BITS = integer("--weight-bits", *options.WEIGHT_BITS, "a signed mantissa needs two "
                      "bits; the target's maximum is checked when compiling")
SHARE = integer("--share", *options.SHARE, "shared weight values per codebook")
SCALE_GROUPS = integer("--scale-groups", *options.SCALE_GROUPS, "groups per population")
LIMIT = integer("--limit", 1, None, "samples")
WORKERS = integer("--workers", 1, 1024, "processes that verify shards of the samples")
INPUT_BITS = integer("--input-bits", *options.INPUT_BITS, "bits of a signed payload; the "
                     "target's graded spike width is checked when compiling")


def vth(text: str) -> float | str:
    """``--vth``: ``auto`` or a threshold > 0 (a fraction of each layer's scale)."""
    if text.strip() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not > 0 (the smallest change a "
                                         "sigma-delta neuron sends)")
    return value


vth.__name__ = "--vth"


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (``snn2hw CMD --help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        print(f"{self.prog}: error: {text} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


__all__ = ["ANN_APPROXIMATIONS", "APPROXIMATIONS", "DT", "ENCODINGS", "INPUT_BITS", "LIMIT",
           "MAX_STEPS", "NEURONS", "PERCENTILE", "RESETS", "SCALE_GROUPS", "SHARE",
           "SHARE_SCOPES", "STEPS", "WEIGHT_BITS", "WORKERS", "Parser", "integer", "real",
           "vth"]
