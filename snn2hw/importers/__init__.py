"""Importers: any model file snn2hw reads -> a NIR graph (:func:`load_model`).

``.nir`` files (snn2hw.nirio), lava-dl netx ``.net`` files (backends/netx_graph.py), and
ANNs converted to spiking networks: ONNX (``.onnx``) and torch.export archives (``.pt2``),
read into one layer list (layers.py) and converted to rate-coded IF neurons (ann.py) or
sigma-delta neurons (ann_sdnn.py) with calibration data. snnTorch modules in memory:
snntorch.py. The front ends and conversions import nothing from this module, which only
dispatches (its imports are inside :func:`load_model`, so importing a submodule stays
cheap).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snn2hw import options
from snn2hw.errors import UserInputError

if TYPE_CHECKING:
    from snn2hw.ir import Graph

#: ANN conversion: rate-coded IF neurons (ann.py) or sigma-delta neurons (ann_sdnn.py)
NEURONS = options.NEURONS

__all__ = ["NEURONS", "Conversion", "load_model"]


@dataclass(frozen=True)
class Conversion:
    """How an ANN file (``.onnx``, ``.pt2``) becomes a spiking network; other files ignore
    it. ``calibration``: ANN inputs (batch, *shape), or a file of them, read only when an
    ANN is converted (required then). ``neuron``: rate-coded ``if`` neurons (ann.py) or
    ``sigma-delta`` neurons (ann_sdnn.py, with ``vth`` and ``input_bits``); ``percentile``,
    ``reset``, ``encoding``, ``approximate`` as :func:`snn2hw.importers.ann.convert` and
    :mod:`snn2hw.importers.layers` take them. Checked when made against the choices and
    ranges the command line offers (:mod:`snn2hw.options`, as compile's Options are)."""

    calibration: str | Path | np.ndarray | None = None
    neuron: str = "if"
    percentile: float = 99.9
    reset: str = "zero"
    encoding: str = "bernoulli"
    approximate: tuple[str, ...] = ()
    vth: float | str = "auto"
    input_bits: int | None = None

    def __post_init__(self) -> None:
        for what, values, allowed in (("neuron", (self.neuron,), options.NEURONS),
                                      ("reset", (self.reset,), options.RESETS),
                                      ("encoding", (self.encoding,), options.ENCODINGS),
                                      ("approximation", self.approximate,
                                       options.ANN_APPROXIMATIONS)):
            for value in values:
                if value not in allowed:
                    raise UserInputError(f"unknown {what} {value!r}",
                                         hint=f"Choose from {', '.join(allowed)}.")
        low, high = options.INPUT_BITS
        bits = self.input_bits
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, Integral)
                                 or not low <= bits <= high):
            raise UserInputError(f"Conversion(input_bits={bits!r}): input_bits must be a "
                                 f"whole number in {low}..{high} (bits of a signed payload)",
                                 hint=f"Give input_bits in {low}..{high}, or None.")


def load_model(path: str | Path, conversion: Conversion | None = None, *,
               sdnn_stand_in: bool = False) -> Graph:
    """The NIR graph of a model file: a ``.nir`` graph, a ``.net`` network (an SDNN file,
    which has no NIR form, only with ``sdnn_stand_in``: its input read, its layers marked
    stand-ins), or an ANN converted as ``conversion`` says. A program image is refused:
    it is what compiling a model gives."""
    from snn2hw import files

    kind = files.sniff(path)
    if kind == "nir":
        from snn2hw import nirio

        return nirio.read(path)
    if kind == "netx":
        from snn2hw.backends.netx_graph import to_graph

        return to_graph(path, sdnn_stand_in=sdnn_stand_in)
    if kind in ("onnx", "pt2"):
        return _convert(path, kind, conversion or Conversion())
    raise UserInputError(f"'{path}' is a {kind} file; compile and verify take a model "
                         "(.nir, .net, .onnx or .pt2)",
                         hint="Pass the model the program was built from.")


def _convert(path: str | Path, kind: str, how: Conversion) -> Graph:
    from snn2hw.importers import ann

    if how.calibration is None:
        raise UserInputError(f"converting an ANN ({kind}) needs calibration data",
                             hint="Pass --calibrate X.npy with ANN inputs (batch, *shape).")
    x = how.calibration
    if not isinstance(x, np.ndarray):
        from snn2hw.verify import load_data

        x = load_data(x, analog=True)[0]
    if how.neuron == "sigma-delta":
        from snn2hw.importers import ann_sdnn

        return ann_sdnn.convert(ann.load_model(path, how.approximate), x,
                                percentile=how.percentile, vth=how.vth,
                                input_bits=how.input_bits or ann_sdnn.DEFAULT_INPUT_BITS)
    return ann.import_ann(path, x, percentile=how.percentile, reset=how.reset,
                          approximate=how.approximate, encoding=how.encoding)
