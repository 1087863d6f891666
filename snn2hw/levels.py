"""The compiler's IR levels, from the float model to the program image.

==========  =======================================================================
Graph       :class:`snn2hw.ir.Graph`: the NIR model, float, validated
Structure   :class:`Structured`: populations and projections held as what they are
            (dense, a convolution with its geometry, sparse; never a dense matrix for a
            convolution), hardware timing offsets and delays, input port widths
Dynamics    :class:`Discrete` (spiking neurons): per population the Loihi decays at dt,
            float gains, biases and thresholds; calibrated statistics, if any
Layers      :class:`Layers` (sigma-delta neurons): per layer its parameters and the
            bounds its integer grid is sized by
HwNet       :class:`snn2hw.passes.hwmodel.HwNet`: integers per neuron group and synapse
            block, not placed (every group's core is -1)
Placed      the same type, every group on a core and a chip
Program     :class:`Emitted`: the program image, and the placed HwNet it came from
==========  =======================================================================

Every pass is a function ``(level, Context) -> level`` (:mod:`snn2hw.steps`); nothing
mutates its input. Each level has a verifier (:mod:`snn2hw.verifiers`) and a readable
dump (:mod:`snn2hw.dumps`); the pass manager (:mod:`snn2hw.pipeline`) ties the three
together. The Xylo path (:mod:`snn2hw.xylo.compile`) shares Graph and
Structure and has levels of its own after them (docs/compiler.md says why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from snn2hw import ir
from snn2hw.options import Options
from snn2hw.passes.discretise import Dynamics
from snn2hw.passes.hwmodel import HwNet
from snn2hw.passes.structure import Structure
from snn2hw.targets import Target


@dataclass(frozen=True)
class Context:
    """What every pass reads besides its level: the target, the options, the calibration
    data (None: worst-case bounds) and the names of the steps being run."""

    target: Target
    options: Options
    calibration: np.ndarray | None = None
    steps: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Structured:
    """Structure level: the graph's populations and projections."""

    graph: ir.Graph                 # the float model (node parameters, the reference)
    structure: Structure
    port_bits: Mapping[str, int]    # input population -> payload bits (0: 0/1 spikes)

    def with_(self, **changes: Any) -> Structured:
        return replace(self, **changes)


@dataclass(frozen=True, eq=False, kw_only=True)
class Discrete(Structured):
    """Dynamics level: each neuron population's discrete Loihi dynamics at dt."""

    reference: Any                  # the float reference's resolved options (dt, ...)
    dynamics: Mapping[str, Dynamics]
    stats: Mapping[str, Any] | None = None     # calibrated bounds (passes/bounds.Stats)


@dataclass(frozen=True, eq=False, kw_only=True)
class Layers(Structured):
    """Layers level: each sigma-delta layer's bounds (passes/quantise_sdnn.Bounds)."""

    bounds: Mapping[str, Any]
    bounds_source: str              # observed at conversion | calibration data | worst case


@dataclass(frozen=True, eq=False)
class Emitted:
    """Program level: the program image and the placed hardware model it was built from."""

    program: Any
    net: HwNet

    def with_(self, **changes: Any) -> Emitted:
        return replace(self, **changes)


__all__ = ["Context", "Discrete", "Emitted", "Layers", "Structured"]
