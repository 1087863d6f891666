"""Float reference vs compiled program on the same data: accuracy, per-layer spike
agreement, saturation, and a PNG that shows them.

Classification: an output population's class is the argmax of its spike count over
time (readouts: of the mean voltage over time), the usual rate decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snn2hw import arrays, execute, iomap, reference, sums
from snn2hw import traces as traces_mod
from snn2hw.errors import UserInputError
from snn2hw.files import atomic_write
from snn2hw.sums import DeviceComparison, LayerAgreement, VerifyReport, decode
from snn2hw.traces import Traces

if TYPE_CHECKING:
    from snn2hw.devices import AnyProgram
    from snn2hw.ir import Graph


def _read_array(path: str | Path, keys: tuple[str, ...], mmap: bool = False
                ) -> np.ndarray | None:
    """A .npy file's array (memory-mapped where ``mmap``), or the first of ``keys`` in a
    .npz (None if it has none)."""
    loaded = arrays.load(path, mmap=mmap)
    if isinstance(loaded, np.ndarray):
        return loaded
    return next((loaded[k] for k in keys if k in loaded), None)


def load_data(data: str | Path, labels: str | Path | None = None, *, analog: bool = False,
              mmap: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Input spikes (B, T, *shape) and optional labels from .npy files or one .npz
    (arrays 'spikes' or 'x', and 'labels' or 'y'). ``analog``: also accept (B, *shape)
    ANN inputs (two or more dimensions). ``mmap``: a .npy of inputs memory-mapped, not
    read (sharded verify: each worker reads its shard). Values must be finite real
    numbers; labels integers (snn2hw.arrays)."""
    x = _read_array(data, ("spikes", "x", "data"), mmap)
    if x is None:
        raise UserInputError(f"'{data}' has no array named spikes, x or data",
                             hint="Name the .npz array 'spikes' (or 'x').")
    x = arrays.finite(x, data)
    y = _read_array(labels, ("labels", "y")) if labels else \
        (_read_array(data, ("labels", "y")) if str(data).endswith(".npz") else None)
    if x.ndim < (2 if analog else 3):
        raise UserInputError(f"data in '{data}' has shape {x.shape}; expected (batch, time, "
                             "*input_shape)")
    if y is not None:
        y = arrays.labels(y, labels or data)
        if y.size != x.shape[0]:
            raise UserInputError(f"{y.size} labels for {x.shape[0]} samples")
    return x, y


def verify(graph: Graph, program: AnyProgram, data: np.ndarray,
           labels: np.ndarray | None = None, *,
           device: str = "emulator", dt: float | None = None, accelerator: str = "cpu"
           ) -> tuple[VerifyReport, Traces]:
    """Run the float reference and ``program`` on ``data`` (B, T, *shape); compare. Returns
    the report and what its figures need (:class:`snn2hw.traces.Traces`, with both runs
    in ``runs``)."""
    if labels is not None and len(labels) != len(data):
        raise UserInputError(f"{len(labels)} labels for {len(data)} samples")
    ref = reference.simulate(graph, data.astype(float), dt=dt, record=("spikes",))
    hw = execute.run(program, data, device=device, accelerator=accelerator)
    io = iomap.read(program)
    # the same exact sums and reduction as `--workers N` (snn2hw.shard), one shard
    part = sums.verify_sums(graph, ref, hw, io, data, labels, dt, device, figures=True)
    rep = sums.verify_report([part], device)
    figures = traces_mod.reduce([part["figures"]])
    figures.runs = {"reference": ref, "device": hw}
    return rep, figures


def compare_devices(program: AnyProgram, data: np.ndarray, labels: np.ndarray | None, *,
                    device: str, against: str, accelerator: str = "cpu") -> DeviceComparison:
    """Run the same program and inputs on two devices; every state variable, every step."""
    if device == against:                       # one run compared with itself: always equal
        raise UserInputError(f"comparing device '{device}' with itself",
                             hint="Compare two different devices, or against the reference.")
    # the same sums and reduction as `--workers N` (snn2hw.shard), one shard
    return sums.compare_report([sums.compare_sums(program, data, labels, device, against,
                                                    accelerator=accelerator)],
                                program, device, against)


def plot(report: VerifyReport, traces: Traces, path: str | Path) -> None:
    """PNG: accuracy bars, per-layer agreement, output raster (sample 0) float vs device
    (``traces``: :class:`snn2hw.traces.Traces`, as :func:`verify` returns it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("writing a PNG needs matplotlib",
                             hint="pip install 'snn2hw[report]' (make setup installs it).") from None
    out = traces.output
    ref = traces.reference_output.reshape(report.steps, -1)
    dev = traces.device_output.reshape(report.steps, -1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    if report.accuracy_reference is not None:
        axes[0].bar(["float reference", report.device],
                    [100 * report.accuracy_reference, 100 * report.accuracy_device],
                    color=["#4c72b0", "#dd8452"])
        axes[0].set_ylim(0, 100)
        axes[0].set_ylabel("accuracy (%)")
    axes[0].set_title(f"{report.samples} samples x {report.steps} steps")
    names = [la.population for la in report.layers]
    axes[1].bar(names, [100 * la.identical_fraction for la in report.layers], color="#55a868")
    axes[1].set_ylim(min([90.0] + [100 * la.identical_fraction for la in report.layers]) - 1, 100)
    axes[1].set_ylabel("identical spike entries (%)")
    axes[1].set_title("per-layer agreement")
    t_r, n_r = np.nonzero(ref)
    t_d, n_d = np.nonzero(dev)
    axes[2].scatter(t_r, n_r - 0.15, s=12, marker="|", label="float reference")
    axes[2].scatter(t_d, n_d + 0.15, s=12, marker="|", label=report.device)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel(f"{out} neuron")
    axes[2].set_yticks(range(ref.shape[1]))
    axes[2].set_title("output spikes, sample 0")
    axes[2].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), what="figure")
    plt.close(fig)


__all__ = ["DeviceComparison", "LayerAgreement", "VerifyReport", "compare_devices", "decode",
           "load_data", "plot", "verify"]
