"""Each IR level in its own readable form, for ``--dump-ir DIR`` (docs/compiler.md).

Graph: the ``snn2hw inspect`` table (text). Structure: populations (shape, offset, port
width) and projections (how each is held, its size, delay, the nodes it folds). Dynamics:
per population its decays, gain, bias and threshold (ranges where neurons differ) and
its calibrated statistics. Layers: per sigma-delta layer its parameters and bounds.
HwNet and Placed: every group and block with its integers (weights in full: dense as rows,
csr as its arrays, kernels as nested lists), the report so far, and for Placed each
core's measured resources. Program: the ``snn2hw inspect`` summary of the image (text).
Each function returns ``(file suffix, text)``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw import ir, sdnn
from snn2hw.levels import Context, Discrete, Emitted, Layers, Structured
from snn2hw.passes import mapping
from snn2hw.passes.hwmodel import HwNet


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if sp.issparse(value):
        m = sp.csr_matrix(value)
        return {"csr_shape": list(m.shape), "data": m.data.tolist(),
                "indices": m.indices.tolist(), "indptr": m.indptr.tolist()}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _json(level: str, body: dict[str, Any]) -> tuple[str, str]:
    return "json", json.dumps({"level": level, **body}, indent=1, default=_default) + "\n"


def _span(values: Any) -> Any:
    """One value where all neurons agree, else min, max and how many distinct."""
    a = np.asarray(values).ravel()
    if a.size == 0:
        return None
    if np.all(a == a[0]):
        return a[0].item()
    return {"min": a.min().item(), "max": a.max().item(), "distinct": int(np.unique(a).size)}


# --------------------------------------------------------------------------- float levels


def graph(g: ir.Graph, ctx: Context | None = None) -> tuple[str, str]:
    from snn2hw.inspect import graph_table

    return "txt", graph_table(g) + "\n"


def _projection(p: Any) -> dict[str, Any]:
    out = {"name": p.name, "held_as": p.kind, "synapses": p.synapses, "delay": p.delay,
           "recurrent": p.recurrent, "through": list(p.nodes), "bias": _span(p.bias)}
    if p.kind == "conv":
        c = p.conv
        out["conv"] = {"kernel": list(np.shape(c.weight)), "stride": _default(c.stride),
                       "padding": _default(c.padding), "dilation": _default(c.dilation),
                       "groups": int(np.asarray(c.groups)), "source_shape": list(p.in_shape)}
    return out


def _structure(s: Structured) -> dict[str, Any]:
    st = s.structure
    pops = [{"name": p, "shape": list(st.shapes[p]), "neurons": st.size(p),
             "offset": st.offsets[p], **({"payload_bits": s.port_bits[p]}
                                         if p in s.port_bits else {})}
            for p in st.populations]
    return {"populations": pops, "projections": [_projection(p) for p in st.projections],
            "outputs": dict(st.outputs)}


def structure(s: Structured, ctx: Context | None = None) -> tuple[str, str]:
    return _json("structure", _structure(s))


def _stats(st: Any) -> dict[str, Any]:
    return {"input_pos_max": float(np.max(st.input_pos, initial=0)),
            "input_neg_max": float(np.max(st.input_neg, initial=0)),
            "v_max": None if st.v_max is None else float(np.max(st.v_max, initial=0))}


def dynamics(d: Discrete, ctx: Context | None = None) -> tuple[str, str]:
    pops = {pop: {"model": dyn.model, "du": _span(dyn.du), "dv": _span(dyn.dv),
                  "gain": _span(dyn.gain), "bias": _span(dyn.bias),
                  "threshold": _span(dyn.threshold), "current_memory": dyn.cuba,
                  **({"calibrated": _stats(d.stats[pop])} if d.stats and pop in d.stats
                     else {})}
            for pop, dyn in d.dynamics.items()}
    return _json("dynamics", {"dt": getattr(d.reference, "dt", None), "dynamics": pops,
                              "statistics": "calibrated" if d.stats else "worst case",
                              "structure": _structure(d)})


def layers(lv: Layers, ctx: Context | None = None) -> tuple[str, str]:
    out = {}
    for pop, b in lv.bounds.items():
        p = sdnn.params(pop, lv.graph.nodes[pop])
        out[pop] = {"vth": p.vth, "act_mode": p.act_mode, "bias": _span(p.bias),
                    "bounds": vars(b)}
    return _json("layers", {"bounds_from": lv.bounds_source, "layers": out,
                            "structure": _structure(lv)})


# --------------------------------------------------------------------------- hardware levels


def _hwnet(net: HwNet) -> dict[str, Any]:
    groups = [{k: v for k, v in vars(g).items()} for g in net.groups]
    blocks = [{k: v for k, v in vars(b).items() if v is not None} for b in net.blocks]
    return {"inputs": list(net.inputs), "outputs": dict(net.outputs),
            "port_bits": dict(net.port_bits), "groups": groups, "blocks": blocks,
            "report": net.report}


def hwnet(net: HwNet, ctx: Context | None = None) -> tuple[str, str]:
    return _json("hwnet", _hwnet(net))


def placed(net: HwNet, ctx: Context) -> tuple[str, str]:
    cores = [vars(c) for c in mapping.usage(net, ctx.target)]
    return _json("placed", {"cores": cores, **_hwnet(net)})


def program(e: Emitted, ctx: Context | None = None) -> tuple[str, str]:
    from snn2hw.program_inspect import program_summary

    return "txt", program_summary(e.program) + "\n"


__all__ = ["dynamics", "graph", "hwnet", "layers", "placed", "program", "structure"]
