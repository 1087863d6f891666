"""Float reference vs compiled program on the same data: accuracy, per-layer spike
agreement, saturation, and a PNG that shows them.

Classification: an output population's class is the argmax of its spike count over
time (readouts: of the mean voltage over time), the usual rate decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw import arrays, execute, reference
from snn2hw.errors import UserInputError
from snn2hw.files import atomic_write


@dataclass
class LayerAgreement:
    population: str
    spikes_reference: int
    spikes_device: int
    identical_fraction: float        # of (sample, step, neuron) entries
    count_correlation: float         # of per-neuron spike counts over the data
    fed_fraction: float | None = None  # the same, the layer fed the device's input spikes


@dataclass
class VerifyReport:
    device: str
    samples: int
    steps: int
    accuracy_reference: float | None
    accuracy_device: float | None
    prediction_agreement: float
    layers: list[LayerAgreement]
    saturation: dict[str, dict[str, int]]
    cost: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"verify: {self.samples} samples x {self.steps} steps, float reference vs "
                 f"{self.device}"]
        if self.accuracy_reference is not None:
            lines.append(f"  accuracy   float reference {100 * self.accuracy_reference:6.2f}%"
                         f"   {self.device} {100 * self.accuracy_device:6.2f}%   "
                         f"(difference {100 * (self.accuracy_device - self.accuracy_reference):+.2f}"
                         " pp)")
        lines.append(f"  same predicted class on {100 * self.prediction_agreement:.2f}% of samples")
        lines.append(f"  {'layer':<16} {'spikes float':>12} {'spikes hw':>10} "
                     f"{'identical':>10} {'count corr':>10} {'fed':>8}")
        for la in self.layers:
            lines.append(f"  {la.population:<16} {la.spikes_reference:>12} {la.spikes_device:>10} "
                         f"{100 * la.identical_fraction:>9.2f}% {la.count_correlation:>10.4f}"
                         + (f" {100 * la.fed_fraction:>7.2f}%" if la.fed_fraction is not None
                            else ""))
        clipped = {g: s for g, s in self.saturation.items()
                   if any(v for k, v in s.items() if k != "first_step")}
        lines.append("  saturation: " + (", ".join(f"{g}: " + ", ".join(
            f"{v} {k.replace('_clip', ' clips').replace('_wrap', ' wraps')}"
            for k, v in s.items() if k != "first_step") for g, s in clipped.items())
                                         if clipped else "none"))
        if self.cost:
            lines.append("  cost model (" + self.device + "): " + self.cost.replace("\n", "\n  "))
        return "\n".join(lines)


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


def decode(output: np.ndarray, readout: bool) -> np.ndarray:
    flat = output.reshape(output.shape[0], output.shape[1], -1)
    return (flat.mean(axis=1) if readout else flat.sum(axis=1)).argmax(axis=-1)


def verify(graph: Any, program: Any, data: np.ndarray, labels: np.ndarray | None = None, *,
           device: str = "emulator", dt: float | None = None, accelerator: str = "cpu"
           ) -> tuple[VerifyReport, Any]:
    """Run the float reference and ``program`` on ``data`` (B, T, *shape); compare. Returns
    the report and what its figures need (:class:`snn2hw.traces.Traces`, with both runs
    in ``runs``)."""
    if labels is not None and len(labels) != len(data):
        raise UserInputError(f"{len(labels)} labels for {len(data)} samples")
    ref = reference.simulate(graph, data.astype(float), dt=dt, record=("spikes",))
    hw = execute.run(program, data, device=device, accelerator=accelerator)
    from snn2hw import shard, traces
    from snn2hw.backends.image import io_map

    io = io_map(program)
    # the same exact sums and reduction as `--workers N` (snn2hw.shard), one shard
    sums = shard.verify_sums(graph, ref, hw, io, data, labels, dt, device, figures=True)
    rep = shard.verify_report([sums], device)
    figures = traces.reduce([sums["figures"]])
    figures.runs = {"reference": ref, "device": hw}
    return rep, figures


def _same_populations(ref: dict[str, Any], hw: dict[str, Any], io: dict[str, Any],
                      device: str) -> None:
    """Every spiking population of the model is on the device and vice versa (readouts,
    which do not spike, aside): a comparison of what both happen to have could pass on
    nothing."""
    readouts = {o["population"] for o in io["outputs"].values() if o["readout"]}
    only = sorted(set(ref) ^ (set(hw) - readouts))
    if only:
        pop = only[0]
        has, lacks = ("float reference", device) if pop in ref else (device, "float reference")
        raise UserInputError(f"population '{pop}' spikes in the {has} but not on the {lacks}, "
                             "so their spikes cannot be compared",
                             hint="Verify a program compiled from this model.")


@dataclass
class DeviceComparison:
    device: str
    against: str
    samples: int
    steps: int
    groups: int
    divergence: Any                      # snn2hw.compare.Divergence, Unmatched or None
    accuracy: dict[str, float] = field(default_factory=dict)
    upstream: str = ""
    layers: list[tuple[str, int, int, float]] = field(default_factory=list)
    variables: tuple[str, ...] = ("spikes", "u", "v")

    def table(self) -> str:
        names = list(self.variables)
        names = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        what = f"{self.samples} samples x {self.steps} steps, {names} of " \
               f"{self.groups} group(s)"
        head = (f"{self.device} vs {self.against}: bit-identical over {what}"
                if self.divergence is None else
                f"{self.device} vs {self.against}: {self.divergence} (compared {what})")
        accs = "   ".join(f"{k} {100 * v:.2f}%" for k, v in self.accuracy.items())
        head += f"\n{self.upstream}" if self.upstream else ""
        rows = "".join(f"\n  {pop:<16} {a:>12} {b:>12} {100 * same:>9.2f}%"
                       for pop, a, b, same in self.layers)
        table = (f"\n  {'layer':<16} {'spikes ' + self.against:>12} "
                 f"{'spikes ' + self.device:>12} {'identical':>10}" + rows) if rows else ""
        return head + table + (f"\n  accuracy   {accs}" if accs else "")


def compare_devices(program: Any, data: np.ndarray, labels: np.ndarray | None, *,
                    device: str, against: str, accelerator: str = "cpu") -> DeviceComparison:
    """Run the same program and inputs on two devices; every state variable, every step."""
    if device == against:                       # one run compared with itself: always equal
        raise UserInputError(f"comparing device '{device}' with itself",
                             hint="Compare two different devices, or against the reference.")
    from snn2hw import shard

    # the same sums and reduction as `--workers N` (snn2hw.shard), one shard
    return shard.compare_report([shard.compare_sums(program, data, labels, device, against,
                                                    accelerator=accelerator)],
                                program, device, against)


def plot(report: VerifyReport, traces: Any, path: str | Path) -> None:
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


__all__ = ["verify", "plot", "VerifyReport", "decode", "load_data", "compare_devices",
           "DeviceComparison"]
