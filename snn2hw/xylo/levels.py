"""The Xylo path's IR levels after the shared Graph level, with a verifier and a dump each.

Xylo's hardware model is not a Loihi HwNet: one core holding three dense matrices (input,
recurrent, output) with one left shift per matrix, every hidden population in one index
range, no groups, blocks, codebooks or placement. So its levels have names of their own:

==============  ===================================================================
xylo-net        :class:`Lowered`: the float Xylo network (:class:`~snn2hw.xylo.lower.
                XyloNet`: populations in the hidden range, gains applied) whose every
                design rule passed; with data, the calibrated bounds
xylo-integers   :class:`Integers`: the program's integer arrays and shifts
xylo-program    :class:`XyloEmitted`: the :class:`XyloProgram` image
==============  ===================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from snn2hw_emulator import xylo_rules
from snn2hw_emulator.errors import ProgramError
from snn2hw_emulator.validate import validate
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw import ir
from snn2hw.errors import DesignRuleError, IRError
from snn2hw.pipeline import Level
from snn2hw.xylo.lower import XyloNet
from snn2hw.xylo.quantise import Quantised


@dataclass(frozen=True, eq=False)
class Lowered:
    graph: ir.Graph
    net: XyloNet
    notes: tuple[str, ...] = ()              # approximations made (each warned once)
    v_max: dict[str, float] | None = None    # calibrated |v| per population (None: worst)
    in_max: float = 1.0                      # input events per channel and step


@dataclass(frozen=True, eq=False)
class Integers:
    net: XyloNet
    quantised: Quantised
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class XyloEmitted:
    program: XyloProgram
    net: XyloNet
    quantised: Quantised
    notes: tuple[str, ...] = ()


def _fail(level: str, problems: list[str]) -> None:
    if problems:
        raise IRError(f"the {level} level is inconsistent: " + "; ".join(problems),
                      hint="This is a compiler bug; report it with the model.")


def verify_net(lv: Lowered, ctx: Any) -> None:
    """Matrix shapes agree with the populations; every Xylo design rule on the float net."""
    net = lv.net
    nh, n_in, n_out = net.n_hidden, net.sizes[net.input], net.sizes[net.output]
    want = {"weights_in": (n_in, nh, 1), "weights_rec": (nh, nh, 1), "weights_out": (nh, n_out)}
    problems = [f"{k} is {getattr(net, k).shape}, not {v}" for k, v in want.items()
                if getattr(net, k).shape != v or not np.all(np.isfinite(getattr(net, k)))]
    problems += [f"'{p}' has no dynamics" for p in (*net.hidden, net.output) if p not in net.dyn]
    _fail("xylo-net", problems)
    bad = xylo_rules.check(net, ctx.target)
    if bad:
        raise DesignRuleError(" | ".join(xylo_rules.describe(v) for v in bad))


def verify_integers(lv: Integers, ctx: Any) -> None:
    """Every integer array inside its width, every shift inside the target's range."""
    rec = ctx.target.numeric
    widths = {"weights_in": rec.weight_bits, "weights_rec": rec.weight_bits,
              "weights_out": rec.weight_bits, "threshold": rec.threshold_bits,
              "threshold_out": rec.threshold_bits, "bias": rec.bias_bits,
              "bias_out": rec.bias_bits}
    a = lv.quantised.arrays
    problems = [f"{k} outside {rec.signed(b)}" for k, b in widths.items()
                if a[k].size and not rec.signed(b)[0] <= a[k].min() <= a[k].max()
                <= rec.signed(b)[1]]
    problems += [f"{k} outside 0..{rec.dash_max}" for k in ("dash_mem", "dash_syn",
                                                              "dash_mem_out", "dash_syn_out")
                 if a[k].size and not 0 <= a[k].min() <= a[k].max() <= rec.dash_max]
    problems += [f"shift {k} = {s} outside 0..{rec.weight_shift_max}"
                 for k, s in lv.quantised.shifts.items() if not 0 <= s <= rec.weight_shift_max]
    _fail("xylo-integers", problems)


def verify_program(lv: XyloEmitted, ctx: Any) -> None:
    """The image as the emulator validates it on load."""
    try:
        validate(lv.program)
    except ProgramError as exc:
        raise DesignRuleError(f"the emitted Xylo program is invalid: {exc}",
                              hint="This is a compiler bug; report it.") from None


def _text(level: str, body: dict[str, Any]) -> tuple[str, str]:
    def default(v: Any) -> Any:
        return v.tolist() if isinstance(v, (np.ndarray, np.generic)) else str(v)
    return "json", json.dumps({"level": level, **body}, indent=1, default=default) + "\n"


def dump_net(lv: Lowered, ctx: Any = None) -> tuple[str, str]:
    net = lv.net
    pops = {p: {"rows": net.rows(p).tolist(), "offset": net.offsets[p],
                "dash_mem": sorted({int(x) for x in net.dyn[p].dash_mem}),
                "dash_syn": sorted({int(x) for x in net.dyn[p].dash_syn}),
                "threshold": [float(net.dyn[p].threshold.min()),
                              float(net.dyn[p].threshold.max())]}
            for p in (*net.hidden, net.output)}
    mats = {k: {"shape": getattr(net, k).shape, "nonzero": int(np.count_nonzero(
        getattr(net, k))), "max_abs": float(np.abs(getattr(net, k)).max(initial=0))}
        for k in ("weights_in", "weights_rec", "weights_out")}
    return _text("xylo-net", {"input": net.input, "hidden": list(net.hidden),
                              "output": net.output, "dt": net.dt, "populations": pops,
                              "matrices": mats, "approximated": list(lv.notes),
                              "calibrated_v_max": lv.v_max, "input_events_max": lv.in_max})


def dump_integers(lv: Integers, ctx: Any = None) -> tuple[str, str]:
    q = lv.quantised
    return _text("xylo-integers", {"shifts": q.shifts, "scales": q.scales,
                                   "report": q.report, "arrays": q.arrays})


def dump_program(lv: XyloEmitted, ctx: Any = None) -> tuple[str, str]:
    from snn2hw.program_inspect import program_summary

    return "txt", program_summary(lv.program) + "\n"


XYLO_NET = Level("xylo-net", verify_net, dump_net)
XYLO_INTEGERS = Level("xylo-integers", verify_integers, dump_integers)
XYLO_PROGRAM = Level("xylo-program", verify_program, dump_program)

__all__ = ["XYLO_INTEGERS", "XYLO_NET", "XYLO_PROGRAM", "Integers", "Lowered", "XyloEmitted"]
