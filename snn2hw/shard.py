"""``snn2hw verify --workers N`` / ``--scheduler ADDRESS``: the samples in contiguous
shards, run by local processes or a Dask cluster (snn2hw.dist).

Each shard runs its float reference and device run (or the two devices of ``--against``)
where it is, and returns only sums over its samples (snn2hw.sums: correct and agreeing
predictions, per layer the spike counts, identical and fed-identical entry counts and
the correlation's sums (n, Σa, Σb, Σa², Σb², Σab of the per-neuron counts), saturation
counts, cost-model sums, ...). Nothing of size samples × steps comes back. The
single-process path (:func:`snn2hw.verify.verify`, ``--workers 1``) builds its report
from the same sums of one shard, and every sum is exact (integers; float sums as exact
partials, snn2hw.exact), so the report is the same for any number of shards, bit for
bit.

A ``.npy`` input is memory-mapped by each shard's worker (``np.load(mmap_mode="r")``),
sliced to its shard; only the path, the array's shape and dtype and the range are sent
(a worker checks it sees the same array). Other inputs are sent shard by shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snn2hw import dist, execute, iomap, reference, traces
from snn2hw.dist import ranges
from snn2hw.errors import UserInputError
from snn2hw.exact import corr_stats, correlation, exact_sum
from snn2hw.sums import compare_report, compare_sums, verify_report, verify_sums
from snn2hw.verify import plot

if TYPE_CHECKING:
    import argparse

    from snn2hw.devices import AnyProgram
    from snn2hw.ir import Graph
    from snn2hw.outputs import AnyCompiled
    from snn2hw.sums import DeviceComparison, VerifyReport
    from snn2hw.traces import Traces

#: a .npy input as workers are told of it: ("npy", absolute path, shape, dtype)
NpySource = tuple[str, str, tuple[int, ...], str]
#: a shard's samples: the array itself, or the .npy file a worker reads them from
Source = np.ndarray | NpySource
#: a graph as sent to workers (picklable): its nodes, edges and metadata
GraphParts = tuple[dict[str, Any], list[tuple[str, str]], dict[str, Any]]


def npy_source(path: str | Path) -> NpySource:
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


def _shard_data(source: Source, lo: int, hi: int) -> np.ndarray:
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


def _verify_task(graph: GraphParts, program: AnyProgram, source: Source, lo: int, hi: int,
                 labels: np.ndarray | None, device: str, dt: float | None,
                 figures: bool = False, accelerator: str = "cpu") -> dict[str, Any]:
    from snn2hw.ir import Graph

    graph = Graph(*graph)                         # sent as plain (nodes, edges, metadata)
    data = _shard_data(source, lo, hi)
    ref = reference.simulate(graph, data.astype(float), dt=dt, record=("spikes",))
    hw = execute.run(program, data, device=device, accelerator=accelerator)
    return verify_sums(graph, ref, hw, iomap.read(program), data, labels, dt, device,
                       figures=figures, first=lo == 0)


def _compare_task(program: AnyProgram, source: Source, lo: int, hi: int,
                  labels: np.ndarray | None,
                  device: str, against: str, accelerator: str = "cpu") -> dict[str, Any]:
    return compare_sums(program, _shard_data(source, lo, hi), labels, device, against, lo,
                        accelerator)


def _source(data: np.ndarray, npy: NpySource | None, lo: int, hi: int) -> Source:
    return npy if npy is not None else np.ascontiguousarray(data[lo:hi])


def verify(graph: Graph, program: AnyProgram, data: np.ndarray, labels: np.ndarray | None = None, *,
           device: str = "emulator", dt: float | None = None, workers: int = 2,
           path: str | Path | None = None, scheduler: str | None = None,
           figures: bool = False, accelerator: str = "cpu"
           ) -> VerifyReport | tuple[VerifyReport, Traces]:
    """:func:`snn2hw.verify.verify`'s report over ``workers`` processes, or over the Dask
    cluster at ``scheduler`` (one shard per worker thread at least); with ``figures``,
    (report, :class:`snn2hw.traces.Traces`). ``path``: the .npy file ``data`` was read
    from unchanged (workers memory-map it), else None."""
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


def compare_devices(program: AnyProgram, data: np.ndarray, labels: np.ndarray | None, *,
                    device: str, against: str, workers: int = 2,
                    path: str | Path | None = None, scheduler: str | None = None,
                    accelerator: str = "cpu") -> DeviceComparison:
    """:func:`snn2hw.verify.compare_devices` over ``workers`` processes or a Dask cluster."""
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


def cli_verify(args: argparse.Namespace, graph: Graph, compiled: AnyCompiled, data: np.ndarray,
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


def write_figures(args: argparse.Namespace, graph: Graph, compiled: AnyCompiled,
                  report: VerifyReport, figures: Traces | None) -> int:
    """--png and --report of a verify run."""
    if args.png:
        plot(report, figures, args.png)
        print(f"wrote {args.png}")
    if args.report:
        from snn2hw import report as html_report

        print(f"wrote {html_report.write(args.report, graph, compiled, report, figures)}")
    return 0


__all__ = ["cli_verify", "compare_devices", "compare_report", "compare_sums", "corr_stats",
           "correlation", "exact_sum", "npy_source", "ranges", "verify",
           "verify_report", "verify_sums", "write_figures"]
