"""What ``snn2hw compile -o OUT/`` writes, all or nothing.

OUT/program.h5      the program image (emulator, ``snn2hw run``)
OUT/lava/run.py     the standalone Lava program, with lava/program.npz (a one-step zero
                    input; ``snn2hw run OUT/program.h5 --device lava`` feeds real data)
OUT/quantised.nir   the graph with the hardware model in node metadata
OUT/report.json     resources, per-layer quantisation and range report, options, passes
OUT/summary.txt     the same, readable
OUT/network.net     with --netx: the program as a lava-dl netx network (backends/netx.py)

For a Xylo target (family xylo-iaf): OUT/program.h5, OUT/xylo_spec.npz and .json (the
specification Rockpool's XyloSim.from_specification takes, backends/rockpool_spec.py),
OUT/report.json and OUT/summary.txt.

Everything is written into a temporary sibling folder that replaces OUT in one rename,
so a failure leaves OUT as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from snn2hw import nirio
from snn2hw.files import usual_mode
from snn2hw.paths import output_folder

if TYPE_CHECKING:
    from snn2hw.compiler import Compiled
    from snn2hw.xylo.compile import XyloCompiled

    #: what compiling gives: a Loihi-family or a Xylo compilation
    AnyCompiled: TypeAlias = Compiled | XyloCompiled

FILES = ("program.h5", "lava/run.py", "lava/program.npz", "quantised.nir", "report.json",
         "summary.txt")
#: What a Xylo target's compile writes (xylo_spec.*: Rockpool's XyloSim.from_specification).
XYLO_FILES = ("program.h5", "xylo_spec.npz", "xylo_spec.json", "report.json", "summary.txt")
# what OUT may hold when it is replaced: the names a previous compile writes, nothing else
NAMES = frozenset(name.split("/")[0] for name in FILES + XYLO_FILES) | {"network.net"}


def files(compiled: AnyCompiled) -> tuple[str, ...]:
    """The files ``write_compiled`` writes for this compiled program."""
    return XYLO_FILES if rep_family(compiled.report) == "xylo-iaf" else FILES


def rep_family(rep: dict[str, Any]) -> str:
    return str(rep.get("family", "loihi-lif"))


def xylo_summary(rep: dict[str, Any]) -> str:
    shifts = rep["weight_shifts"]
    head = (f"target {rep['target']}: {rep['inputs']} inputs, {rep['hidden']} hidden and "
            f"{rep['outputs']} output neurons on one Xylo core; {rep['recurrent_weights']} "
            f"hidden-to-hidden weights; latency {rep['latency_steps']} step(s) behind the "
            "float model")
    passes = (f"passes: {' -> '.join(rep['passes'])}  "
              f"({1000 * sum(rep['timings_s'].values()):.0f} ms)")
    shift_line = "weight shifts: " + ", ".join(f"{k.split('_')[1]} <<{v}"
                                               for k, v in shifts.items())
    table = (f"{'layer':<14} {'neurons':>7} {'scale':>10} {'limited by':>12} "
             f"{'threshold':>13} {'dash_mem':>9} {'dash_syn':>9}")
    lines = [head, passes, shift_line, "", table]
    for name, g in rep["layers"].items():
        th = f"{g['threshold'][0]}..{g['threshold'][1]}"
        lines.append(f"{name:<14} {g['neurons']:>7} {g['scale']:>10.4g} {g['limited_by']:>12} "
                     f"{th:>13} {','.join(map(str, g['dash_mem'])):>9} "
                     f"{','.join(map(str, g['dash_syn'])):>9}")
    lines += [f"warning: {w}" for w in rep.get("warnings", [])]
    return "\n".join(lines) + "\n"


def summary(rep: dict[str, Any]) -> str:
    if rep_family(rep) == "xylo-iaf":
        return xylo_summary(rep)
    mem_kib = rep["synapse_memory_bits"] / 8 / 1024
    lines = [(f"target {rep['target']}: {rep['neurons']} neurons on {rep['cores']} core(s), "
             f"{rep['chips']} chip(s); synaptic memory {mem_kib:.1f} KiB; "
             f"latency {rep['latency_steps']} step(s) behind the float model"),
             (f"passes: {' -> '.join(rep['passes'])}  "
             f"({1000 * sum(rep['timings_s'].values()):.0f} ms)"),
             "",
             (f"{'group':<14} {'neurons':>7} {'scale':>10} {'limited by':>12} {'vth':>6} "
             f"{'du':>5} {'dv':>5}  inputs (weight_exp, bits used, rms error)")]
    for name, g in rep["layers"].items():
        ins = "; ".join(f"{src}: {b['kind']} e={b['weight_exp']} {b['bits_used']}b "
                        f"{100 * b['rms_error']:.2f}%" + (f" delay {b['delay']}" if b["delay"]
                                                          else "")
                        for src, b in g["inputs"].items())
        lines.append(f"{name:<14} {g['neurons']:>7} {g['scale']:>10.4g} {g['limited_by']:>12} "
                     f"{g['vth']:>6} {g['du']:>5} {g['dv']:>5}  {ins}")
    lines += ["", (f"{'core':>4} {'chip':>4} {'neurons':>7} {'memory KiB':>10} {'fan-in':>6} "
              f"{'fan-out':>7}  groups")]
    for c in rep["per_core"]:
        lines.append(f"{c['index']:>4} {c['chip']:>4} {c['neurons']:>7} "
                     f"{c['memory_bits'] / 8192:>10.1f} {c['fan_in']:>6} {c['fan_out']:>7}  "
                     f"{', '.join(c['groups'])}")
    if rep.get("mapping_layers"):
        lines += ["", (f"{'layer':<14} {'neurons':>7} {'parts':>5} {'cores':>5} "
                       f"{'bound':>5}  limit")]
        for la in rep["mapping_layers"]:
            lines.append(f"{la['population']:<14} {la['neurons']:>7} {la['parts']:>5} "
                         f"{la['cores']:>5} {la['lower_bound']:>5}  {la['binding']}")
    if rep.get("share"):
        s = rep["share"]
        lines.append(f"\nweight sharing: {s['values']} values per {s['scope']} ({s['method']})")
    cost = rep.get("cost")
    if cost:
        lines.append(f"\ncost model on {cost['samples']} calibration sample(s): "
                     f"{cost['energy_per_step_pj'] / 1e3:.2f} nJ and "
                     f"{cost['latency_per_step_ns']:.0f} ns (max "
                     f"{cost['latency_per_step_max_ns']:.0f} ns) per timestep"
                     + (" (estimated figures)" if cost["estimated_figures"] else ""))
    else:
        lines.append("\ncost model: pass --calibrate X.npy to estimate energy and latency "
                     "per timestep from real activity")
    for w in rep.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _write_loihi(compiled: Compiled, tmp: Path) -> None:
    from snn2hw_emulator import image

    from snn2hw.backends import lava

    image.save(compiled.program, tmp / "program.h5")
    zero = {p.name: np.zeros((1, 1, p.size), dtype=np.int64) for p in compiled.program.ports}
    lava.emit([(compiled.program, zero, 1)], tmp / "lava")
    nirio.write(compiled.graph, tmp / "quantised.nir")
    rep = compiled.report
    if compiled.options.netx:
        from snn2hw.backends import netx

        netx.export(compiled.program, tmp / "network.net")
    _write_report(rep, tmp)


def _write_xylo(compiled: XyloCompiled, tmp: Path) -> None:
    from snn2hw_emulator import image

    from snn2hw.backends import rockpool_spec

    image.save(compiled.program, tmp / "program.h5")
    rockpool_spec.write(compiled.program, compiled.net.dt, tmp / "xylo_spec.npz",
                        tmp / "xylo_spec.json")
    _write_report(compiled.report, tmp)


def _write_report(rep: dict[str, Any], tmp: Path) -> None:
    (tmp / "report.json").write_text(json.dumps(rep, indent=1, default=_json_default))
    (tmp / "summary.txt").write_text(summary(rep))


def write_compiled(compiled: AnyCompiled, out_dir: str | Path) -> Path:
    out = output_folder(out_dir, "output", replaces=NAMES)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, usual_mode(directory=True))       # not mkdtemp's 0700
    try:
        if rep_family(compiled.report) == "xylo-iaf":
            _write_xylo(compiled, tmp)
        else:
            _write_loihi(compiled, tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["FILES", "NAMES", "XYLO_FILES", "files", "summary", "write_compiled"]
