"""``snn2hw verify --workers N`` / ``--scheduler ADDRESS``: the samples in contiguous
shards, run by local processes or a Dask cluster (snn2hw.dist).

Each shard runs its float reference and device run (or the two devices of ``--against``)
where it is, and returns only sums over its samples: correct and agreeing predictions,
per layer the spike counts, identical and fed-identical entry counts and the
correlation's sums (n, Σa, Σb, Σa², Σb², Σab of the per-neuron counts), saturation
counts, cost-model sums, for a device comparison its first divergence with the global
sample index, and for --png/--report what the figures draw (snn2hw.traces). Nothing of
size samples × steps comes back. The single-process path (:func:`snn2hw.verify.verify`,
``--workers 1``) builds its report from the same sums of one shard, and every sum is
exact (integers; float sums as exact partials, :func:`exact_sum`), so the report is the
same for any number of shards, bit for bit.

A ``.npy`` input is memory-mapped by each shard's worker (``np.load(mmap_mode="r")``),
sliced to its shard; only the path, the array's shape and dtype and the range are sent
(a worker checks it sees the same array). Other inputs are sent shard by shard.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.errors import UserInputError


def exact_sum(values: Any) -> list[float]:
    """Floats whose exact sum is the exact sum of ``values`` (finite): the correctly
    rounded sum, then the correctly rounded remainder, until it is zero. The partials of
    several shards together give, by math.fsum, the correctly rounded total."""
    v = np.asarray(values, dtype=float).ravel().tolist()
    parts: list[float] = []
    for _ in range(80):                      # a float64 range is ~2100 bits: few rounds
        s = math.fsum(v + [-p for p in parts])
        if s == 0 or not math.isfinite(s):
            break
        parts.append(s)
    return parts


def _total(parts: list[list[float]]) -> float:
    return math.fsum(p for part in parts for p in part)


def corr_stats(a: np.ndarray, b: np.ndarray) -> tuple[Any, ...]:
    """(n, and the exact sums of a, b, a², b², ab) of two equal-sized arrays."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    return (a.size, exact_sum(a), exact_sum(b), exact_sum(a * a), exact_sum(b * b),
            exact_sum(a * b))


def correlation(stats: list[tuple]) -> float:
    """Pearson correlation from the shards' :func:`corr_stats`; 1.0 for two equal
    constant arrays, 0.0 when one is constant and they differ."""
    n = sum(s[0] for s in stats)
    sa, sb, saa, sbb, sab = (sum((Fraction(p) for s in stats for p in s[k]), Fraction(0))
                             for k in range(1, 6))
    var_a, var_b = n * saa - sa * sa, n * sbb - sb * sb
    if var_a == 0 or var_b == 0:
        return 1.0 if var_a == var_b == 0 and sa == sb else 0.0
    r = float(n * sab - sa * sb) / math.sqrt(float(var_a) * float(var_b))
    return min(1.0, max(-1.0, r))


def verify_sums(graph: Any, ref: Any, hw: Any, io: dict[str, Any], data: np.ndarray,
                labels: np.ndarray | None, dt: float | None, device: str, *,
                figures: bool = False, first: bool = True) -> dict[str, Any]:
    """The sums of one shard's float reference ``ref`` and device run ``hw``; with
    ``figures``, what --png/--report draw (:func:`snn2hw.traces.sums`; sample 0's rasters
    where ``first``: the shard holds sample 0)."""
    from snn2hw import layerwise
    from snn2hw.verify import _same_populations, decode

    out_name = next(iter(io["outputs"]))
    readout = bool(io["outputs"][out_name]["readout"])
    pred_ref = decode(ref.outputs[out_name], readout)
    pred_hw = decode(hw.outputs[out_name], readout)
    _same_populations(ref.spikes, hw.spikes, io, device)
    spiking = {pop: s for pop, s in hw.spikes.items() if pop in ref.spikes}
    fed = layerwise.fed_agreement(graph, spiking, data.astype(float), dt=dt)
    layers = []
    for pop, s_hw in spiking.items():
        s_ref = ref.spikes[pop].reshape(s_hw.shape)
        # fed_agreement gives a fraction c / size: round(fraction * size) is c exactly
        fed_count = round(fed[pop][0] * s_hw.size) if fed[pop][0] is not None else None
        layers.append((pop, int(s_ref.sum()), int(s_hw.sum()),
                       int(np.count_nonzero(s_ref == s_hw)), int(s_hw.size),
                       corr_stats(s_ref.sum(axis=1), s_hw.sum(axis=1)), fed_count))
    cost = None
    if hw.cost is not None:
        c = hw.cost
        cost = {"totals": {e: int(v.sum()) for e, v in c.counts.items()},
                "energy": exact_sum(c.energy_pj), "latency": exact_sum(c.latency_ns),
                "latency_max": float(c.latency_ns.max()), "steps": int(c.latency_ns.shape[1]),
                "estimated": bool(c.estimated)}
    from snn2hw import traces

    return {"samples": int(data.shape[0]), "steps": int(data.shape[1]),
            "figures": traces.sums(ref, hw, out_name, first) if figures else None,
            "correct": None if labels is None else
            (int((pred_ref == labels).sum()), int((pred_hw == labels).sum())),
            "agree": int((pred_ref == pred_hw).sum()), "layers": layers,
            "saturation": {g: {k: int(v) for k, v in s.items()} for g, s in
                           hw.saturation.items()}, "cost": cost}


def _cost_line(parts: list[dict[str, Any]], samples: int) -> str:
    """emulator.cost.CostReport.summary's line, from the shards' sums."""
    tot = {e: sum(p["totals"][e] for p in parts) for e in parts[0]["totals"]}
    steps = parts[0]["steps"]
    latency = _total([p["latency"] for p in parts])
    flag = " (target cost figures are estimates)" if parts[0]["estimated"] else ""
    energy = _total([p["energy"] for p in parts])
    energy_text = (f"{energy / samples / 1e6:.4f} uJ" if energy else
                   "energy not modelled (no published figures)")
    return (f"cost per sample: {energy_text}, "
            f"{latency / samples / 1e3:.2f} us over {steps} steps "
            f"(mean step {latency / (samples * steps):.0f} ns, "
            f"max {max(p['latency_max'] for p in parts):.0f} ns)"
            f"; totals over {samples} sample(s): {tot['synops']} synops, {tot['spikes']} spikes "
            f"({tot['payload_bits']} payload bits), "
            f"{tot['hops']} hops, {tot['active']} active neuron updates{flag}")


def verify_report(shards: list[dict[str, Any]], device: str) -> Any:
    """The VerifyReport of the shards' :func:`verify_sums`, in sample order."""
    from snn2hw.verify import LayerAgreement, VerifyReport

    n = sum(s["samples"] for s in shards)
    acc_ref = acc_dev = None
    if shards[0]["correct"] is not None:
        acc_ref = sum(s["correct"][0] for s in shards) / n
        acc_dev = sum(s["correct"][1] for s in shards) / n
    layers = []
    for k, first in enumerate(shards[0]["layers"]):
        rows = [s["layers"][k] for s in shards]
        size = sum(r[4] for r in rows)
        fed = None if first[6] is None else sum(r[6] for r in rows) / size
        layers.append(LayerAgreement(first[0], sum(r[1] for r in rows), sum(r[2] for r in rows),
                                     sum(r[3] for r in rows) / size,
                                     correlation([r[5] for r in rows]), fed))
    saturation: dict[str, dict[str, int]] = {}
    for s in shards:
        for g, counts in s["saturation"].items():
            into = saturation.setdefault(g, {})
            for key, v in counts.items():
                into[key] = into.get(key, 0) + v
    costs = [s["cost"] for s in shards]
    cost = _cost_line(costs, n) if all(c is not None for c in costs) else None
    return VerifyReport(device, n, shards[0]["steps"], acc_ref, acc_dev,
                        sum(s["agree"] for s in shards) / n, layers, saturation, cost)


def compare_sums(program: Any, data: np.ndarray, labels: np.ndarray | None, device: str,
                 against: str, offset: int = 0, accelerator: str = "cpu") -> dict[str, Any]:
    """One shard of :func:`snn2hw.verify.compare_devices`: its first divergence (sample
    index made global by ``offset``) with the explanation, and counts (the emulator's
    side on ``accelerator``)."""
    from dataclasses import replace

    from snn2hw import execute
    from snn2hw.backends.image import io_map
    from snn2hw.compare import Divergence, explain, first_divergence
    from snn2hw.verify import decode

    runs = {d: execute.run(program, data, device=d, record_states=True,
                           accelerator=accelerator if d == "emulator" else "cpu")
            for d in (device, against)}
    div = first_divergence(runs[against].raw, runs[device].raw, execute.states(program),
                           names=(against, device))
    detail = explain(program, runs[against].raw, div, runs[against].ports) if div else ""
    if isinstance(div, Divergence):
        div = replace(div, sample=div.sample + offset)
    io = io_map(program)
    out_name = next(iter(io["outputs"]))
    readout = bool(io["outputs"][out_name]["readout"])
    correct = {}
    if labels is not None:
        correct = {d: int((decode(r.outputs[out_name], readout) == labels).sum())
                   for d, r in runs.items()}
    steps = max((s.shape[1] for r in runs.values() for s in (r.raw.spikes or {}).values()),
                default=int(data.shape[1]))
    layers = [(pop, int(np.count_nonzero(s)), int(np.count_nonzero(runs[device].spikes[pop])),
               int(np.count_nonzero(s == runs[device].spikes[pop])), int(s.size))
              for pop, s in runs[against].spikes.items() if pop in runs[device].spikes]
    return {"samples": int(data.shape[0]), "steps": int(steps), "divergence": div,
            "detail": detail, "correct": correct, "layers": layers}


def compare_report(shards: list[dict[str, Any]], program: Any, device: str, against: str
                   ) -> Any:
    """The DeviceComparison of the shards' :func:`compare_sums`, in sample order. The
    first divergence: the earliest step, then the variable and group in
    first_divergence's order, then the lowest sample; its count is the total."""
    from dataclasses import replace

    from snn2hw import execute
    from snn2hw.compare import Divergence
    from snn2hw.verify import DeviceComparison

    variables = list(execute.states(program))
    divs = [(s["divergence"], s["detail"]) for s in shards if s["divergence"] is not None]
    div, detail = None, ""
    unmatched = [d for d in divs if not isinstance(d[0], Divergence)]
    if unmatched:
        div, detail = unmatched[0]
    elif divs:
        div, detail = min(divs, key=lambda d: (d[0].step, variables.index(d[0].variable),
                                               d[0].group, d[0].sample))
        div = replace(div, count=sum(d[0].count for d in divs))
    n = sum(s["samples"] for s in shards)
    acc = {d: sum(s["correct"][d] for s in shards) / n for d in shards[0]["correct"]}
    layers = []
    for k, first in enumerate(shards[0]["layers"]):
        rows = [s["layers"][k] for s in shards]
        layers.append((first[0], sum(r[1] for r in rows), sum(r[2] for r in rows),
                       sum(r[3] for r in rows) / sum(r[4] for r in rows)))
    return DeviceComparison(device, against, n, max(s["steps"] for s in shards),
                            len(getattr(program, "groups", ("hidden", "output"))), div,
                            acc, detail, layers,
                            execute.states(program))


def npy_source(path: str | Path) -> tuple[str, str, tuple[int, ...], str]:
    """What a worker is told of a .npy input: ("npy", absolute path, shape, dtype); it
    maps the file itself and checks that it sees the same array (:func:`_shard_data`)."""
    fmt = np.lib.format
    with open(path, "rb") as fh:                  # the header only: nothing is mapped here
        version = fmt.read_magic(fh)
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        if version in read:
            shape, _, dtype = read[version](fh)
        else:                                     # 3.0 (utf-8 field names): numpy reads it
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
            shape, dtype = mm.shape, mm.dtype
    return ("npy", str(Path(path).resolve()), tuple(shape), np.dtype(dtype).str)


def _shard_data(source: Any, lo: int, hi: int) -> np.ndarray:
    """A shard's samples: sent as an array, or read by the worker from a .npy file
    (memory-mapped, sliced), which must be the one the client read: a worker on another
    machine sees it only through a file system mounted at the same path."""
    if not isinstance(source, tuple):
        return source
    _, path, shape, dtype = source
    import socket

    where = f"worker on {socket.gethostname()}"
    hint = ("--scheduler assumes every worker reads the client's .npy at the same path (a "
            "shared file system): mount it there, or use --workers N on this machine.")
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as exc:
        raise UserInputError(f"the {where} cannot read the input '{path}' "
                             f"({exc.strerror or type(exc).__name__})", hint=hint) from None
    if tuple(mm.shape) != tuple(shape) or mm.dtype.str != dtype:
        raise UserInputError(f"the {where} reads a different '{path}' ({mm.dtype} "
                             f"{tuple(mm.shape)}; the client read {np.dtype(dtype)} "
                             f"{tuple(shape)})", hint=hint)
    return mm[lo:hi]


def _verify_task(graph: Any, program: Any, source: Any, lo: int, hi: int,
                 labels: np.ndarray | None, device: str, dt: float | None,
                 figures: bool = False, accelerator: str = "cpu") -> dict[str, Any]:
    from snn2hw import execute, reference
    from snn2hw.backends.image import io_map

    from snn2hw.ir import Graph

    graph = Graph(*graph)                         # sent as plain (nodes, edges, metadata)
    data = _shard_data(source, lo, hi)
    ref = reference.simulate(graph, data.astype(float), dt=dt, record=("spikes",))
    hw = execute.run(program, data, device=device, accelerator=accelerator)
    return verify_sums(graph, ref, hw, io_map(program), data, labels, dt, device,
                       figures=figures, first=lo == 0)


def _compare_task(program: Any, source: Any, lo: int, hi: int, labels: np.ndarray | None,
                  device: str, against: str, accelerator: str = "cpu") -> dict[str, Any]:
    return compare_sums(program, _shard_data(source, lo, hi), labels, device, against, lo,
                        accelerator)


def ranges(samples: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (lo, hi) ranges covering the samples, sizes differing by at
    most one (fewer when there are fewer samples than shards)."""
    k = max(1, min(shards, samples))
    cuts = [samples * i // k for i in range(k + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _source(data: np.ndarray, npy: tuple | None, lo: int, hi: int) -> Any:
    return npy if npy is not None else np.ascontiguousarray(data[lo:hi])


def verify(graph: Any, program: Any, data: np.ndarray, labels: np.ndarray | None = None, *,
           device: str = "emulator", dt: float | None = None, workers: int = 2,
           path: str | Path | None = None, scheduler: str | None = None,
           figures: bool = False, accelerator: str = "cpu") -> Any:
    """:func:`snn2hw.verify.verify`'s report over ``workers`` processes, or over the Dask
    cluster at ``scheduler`` (one shard per worker thread at least); with ``figures``,
    (report, :class:`snn2hw.traces.Traces`). ``path``: the .npy file ``data`` was read
    from unchanged (workers memory-map it), else None."""
    from snn2hw import dist, traces

    if labels is not None and len(labels) != len(data):
        raise UserInputError(f"{len(labels)} labels for {len(data)} samples")
    npy = npy_source(path) if path is not None else None
    parts = (dict(graph.nodes), graph.edges, dict(graph.metadata))   # picklable

    def tasks(span: list[tuple[int, int]]) -> list[tuple]:
        return [(parts, program, _source(data, npy, lo, hi), lo, hi,
                 None if labels is None else labels[lo:hi], device, dt, figures, accelerator)
                for lo, hi in span]
    sums = dist.run(_verify_task, tasks, len(data), workers, scheduler, shared=(0, 1))
    rep = verify_report(sums, device)
    return (rep, traces.reduce([s["figures"] for s in sums])) if figures else rep


def compare_devices(program: Any, data: np.ndarray, labels: np.ndarray | None, *,
                    device: str, against: str, workers: int = 2,
                    path: str | Path | None = None, scheduler: str | None = None,
                    accelerator: str = "cpu") -> Any:
    """:func:`snn2hw.verify.compare_devices` over ``workers`` processes or a Dask cluster."""
    from snn2hw import dist

    if device == against:
        raise UserInputError(f"comparing device '{device}' with itself",
                             hint="Compare two different devices, or against the reference.")
    npy = npy_source(path) if path is not None else None

    def tasks(span: list[tuple[int, int]]) -> list[tuple]:
        return [(program, _source(data, npy, lo, hi), lo, hi,
                 None if labels is None else labels[lo:hi], device, against, accelerator)
                for lo, hi in span]
    return compare_report(dist.run(_compare_task, tasks, len(data), workers, scheduler,
                                   shared=(0,)), program, device, against)


def _npy_path(path: str, data: np.ndarray) -> str | None:
    """``path`` if it is a .npy file holding ``data`` as read (a prefix of its samples),
    so workers can memory-map it; None (send the array) otherwise."""
    if not str(path).endswith(".npy"):
        return None
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    same = mm.shape[1:] == data.shape[1:] and mm.dtype == data.dtype and \
        len(mm) >= len(data)
    return str(path) if same else None


def cli_verify(args: Any, graph: Any, compiled: Any, data: np.ndarray,
               labels: np.ndarray | None) -> int:
    """``snn2hw verify --workers N`` (N > 1) or ``--scheduler ADDRESS`` after compiling:
    print the report, write --png/--report from the figures reduced on the workers."""
    path = _npy_path(args.data, data)
    scheduler = getattr(args, "scheduler", None)
    program = compiled.program
    if args.against != "reference":
        if args.against == args.device:
            raise UserInputError(f"--device and --against are both '{args.device}'",
                                 hint="Compare two different devices, or against reference.")
        comparison = compare_devices(program, data, labels, device=args.device,
                                     against=args.against, workers=args.workers, path=path,
                                     scheduler=scheduler, accelerator=args.accelerator)
        print(comparison.table())
        return 0 if comparison.divergence is None else 1
    want = bool(args.png or args.report)
    out = verify(graph, program, data, labels, device=args.device, dt=args.dt,
                 workers=args.workers, path=path, scheduler=scheduler, figures=want,
                 accelerator=args.accelerator)
    report, figures = out if want else (out, None)
    print(report.table())
    return write_figures(args, graph, compiled, report, figures)


def write_figures(args: Any, graph: Any, compiled: Any, report: Any, figures: Any) -> int:
    """--png and --report of a verify run."""
    from snn2hw import verify as verify_mod

    if args.png:
        verify_mod.plot(report, figures, args.png)
        print(f"wrote {args.png}")
    if args.report:
        from snn2hw import report as html_report

        print(f"wrote {html_report.write(args.report, graph, compiled, report, figures)}")
    return 0


__all__ = ["cli_verify", "compare_devices", "compare_report", "compare_sums", "corr_stats",
           "correlation", "exact_sum", "npy_source", "ranges", "verify",
           "verify_report", "verify_sums", "write_figures"]
