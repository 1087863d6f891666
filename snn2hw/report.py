"""A self-contained HTML report of a compiled model on data (``snn2hw verify --report DIR``).

DIR/report.html embeds every figure (PNG as data URIs), so the one file can be mailed or
archived; the PNGs are also written next to it:

* rasters.png        spike rasters of every population, float reference vs device, sample 0
* agreement.png      accuracy and per-layer identical-spike fraction
* weights.png        weight quantisation error histograms per synapse block
* cores.png          core utilisation on the chip mesh: neurons, synaptic memory, spikes
* cost.png           energy and latency per timestep from the target's cost model
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw.errors import UserInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from snn2hw.ir import Graph
    from snn2hw.outputs import AnyCompiled
    from snn2hw.sums import VerifyReport
    from snn2hw.traces import Traces

# what write() puts in DIR (cost.png only with a cost model)
FILES = ("report.html", "rasters.png", "agreement.png", "weights.png", "cores.png", "cost.png")


def _plt() -> Any:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("the report needs matplotlib",
                             hint="pip install 'snn2hw[report]' (make setup installs it).") from None
    return plt


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return buf.getvalue()


def rasters(rep: VerifyReport, traces: Traces) -> bytes:
    plt = _plt()
    ref, dev = traces.reference, traces.device
    pops = [p for p in dev if p in ref]
    fig, axes = plt.subplots(len(pops), 1, figsize=(11, 2.2 * len(pops)), squeeze=False)
    for ax, pop in zip(axes[:, 0], pops):
        r = ref[pop].reshape(rep.steps, -1)
        d = dev[pop].reshape(rep.steps, -1)
        tr, nr = np.nonzero(r)
        td, nd = np.nonzero(d)
        ax.scatter(tr, nr - 0.2, s=4, marker="|", label="float reference")
        ax.scatter(td, nd + 0.2, s=4, marker="|", label=rep.device)
        ax.set_ylabel(pop)
        ax.set_xlim(-1, rep.steps)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("step (sample 0)")
    fig.tight_layout()
    return _png(fig)


def agreement(rep: VerifyReport) -> bytes:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    if rep.accuracy_reference is not None:
        a.bar(["float reference", rep.device],
              [100 * rep.accuracy_reference, 100 * rep.accuracy_device])
        a.set_ylabel("accuracy (%)")
        a.set_ylim(0, 100)
    b.bar([la.population for la in rep.layers], [100 * la.identical_fraction for la in rep.layers])
    b.set_ylabel("identical spike entries (%)")
    b.set_ylim(min([90.0] + [100 * la.identical_fraction for la in rep.layers]) - 1, 100)
    fig.tight_layout()
    return _png(fig)


def weight_errors(graph: Graph, compiled: AnyCompiled) -> bytes:
    """Quantised minus float weight, in units of the block's largest float weight."""
    from snn2hw.passes import discretise as disc
    from snn2hw.passes import structure
    from snn2hw.passes.hwmodel import dense

    plt = _plt()
    st = structure.analyse(graph)
    opt = disc.options(graph, compiled.options.dt)
    errors = []
    for b in compiled.net.blocks:
        if b.kind == "conv":
            continue
        g = compiled.net.group(b.target)
        proj = next(p for p in st.projections if p.source == b.source and
                    p.target == g.population)
        f = compiled.target.numeric
        dyn = disc.dynamics(g.population, graph.nodes[g.population], st.size(g.population),
                            opt, compiled.options.approximations, f)
        want = g.scale * dyn.gain[g.index, None] * proj.rows(g.index) / f.act_scale
        top = np.abs(want).max() or 1.0
        errors.append((b.name, ((dense(b.effective()) - want) / top).ravel()))
    fig, axes = plt.subplots(1, max(len(errors), 1), figsize=(4 * max(len(errors), 1), 3),
                             squeeze=False)
    for ax, (name, e) in zip(axes[0], errors):
        ax.hist(e, bins=41)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("error / max |weight|")
    fig.tight_layout()
    return _png(fig)


def cores(compiled: AnyCompiled, traces: Traces) -> bytes:
    from snn2hw.passes import mapping

    plt = _plt()
    t = compiled.target
    rows, cols = t.chip.mesh
    uses = mapping.usage(compiled.net, t)
    spikes = traces.core_spikes
    maps = {"neurons (% of core)": np.zeros((rows, cols)),
            "synaptic memory (% of core)": np.zeros((rows, cols)),
            "spikes sent": np.zeros((rows, cols))}
    for u in uses:
        if u.chip != 0:
            continue
        slot = u.index % t.chip.cores_max
        r, c = divmod(slot, cols)
        maps["neurons (% of core)"][r, c] = 100 * u.neurons / t.core.neurons_max
        maps["synaptic memory (% of core)"][r, c] = 100 * u.memory_bits / \
            t.core.synapse_memory_bits
        if spikes is not None and u.index in traces.core_ids:
            maps["spikes sent"][r, c] = spikes[list(traces.core_ids).index(u.index)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    for ax, (title, m) in zip(axes, maps.items()):
        im = ax.imshow(m, cmap="viridis")
        ax.set_title(f"chip 0: {title}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return _png(fig)


def cost_plot(traces: Traces) -> bytes:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = np.arange(1, traces.latency_step_ns.shape[0] + 1)
    a.plot(steps, traces.energy_step_pj / 1e3)
    a.set_xlabel("step")
    a.set_ylabel("energy (nJ, mean over samples)")
    b.plot(steps, traces.latency_step_ns / 1e3)
    b.set_xlabel("step")
    b.set_ylabel("latency (us, mean over samples)")
    fig.tight_layout()
    return _png(fig)


def write(out_dir: str | Path, graph: Graph, compiled: AnyCompiled, rep: VerifyReport,
          traces: Traces) -> Path:
    """Write DIR/report.html and the PNGs; return the HTML path. ``traces``:
    :class:`snn2hw.traces.Traces` (from verify.verify, or reduced from shards)."""
    from snn2hw.files import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"rasters.png": ("Spike rasters, float reference vs device (sample 0)",
                               rasters(rep, traces)),
               "agreement.png": ("Accuracy and per-layer agreement", agreement(rep)),
               "weights.png": ("Weight quantisation error", weight_errors(graph, compiled)),
               "cores.png": ("Core utilisation", cores(compiled, traces))}
    if traces.energy_step_pj is not None:
        figures["cost.png"] = ("Energy and latency per timestep (cost model)",
                               cost_plot(traces))
    for name, (_, data) in figures.items():
        atomic_write(out / name, lambda tmp, d=data: Path(tmp).write_bytes(d), what="figure")
    summary = compiled.report
    body = [f"<h1>snn2hw report: {html.escape(summary['target'])}</h1>",
            f"<pre>{html.escape(rep.table())}</pre>"]
    for name, (title, data) in figures.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        body.append(f"<h2>{html.escape(title)}</h2><img alt=\"{name}\" src=\"{uri}\">")
    body.append("<h2>Compile report</h2><pre>" + html.escape(
        json.dumps({k: v for k, v in summary.items() if k not in ("per_core",)}, indent=1,
                   default=str)) + "</pre>")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>snn2hw report</title>"
            "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
            "img{max-width:100%}</style></head><body>" + "\n".join(body) + "</body></html>")
    atomic_write(out / "report.html", lambda tmp: Path(tmp).write_text(page), what="report")
    return out / "report.html"


__all__ = ["FILES", "write"]
