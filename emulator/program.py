"""In-memory form of a program image (the contract between compiler and devices).

Time convention (identical to Lava's LoihiProtocol): steps are numbered
t = 1..T. Input column ``c`` (0-based) of a port is emitted at step ``c+1``.
Every synapse block adds exactly one step of latency: the activation a neuron
group integrates at step t is computed from its sources' spikes at step t-1
(spikes at step 0 are all zero). A DelayDense synapse with delay d delivers at
step t+1+d. Recorded u and v are the values after the step's update and reset
(what a Lava Monitor sees).

Index layout: every group and port is a flat vector. A group with a
multi-dimensional ``shape`` (for example a convolution output in Lava's
(W, H, C) layout) is flattened in C order (``numpy.ravel`` of that shape),
which is what Lava's ``OutPort.flatten()`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

FORMAT_NAME = "snn2hw-program"
FORMAT_VERSION = 1

NeuronModel = Literal["lif", "lif_reset"]
BlockKind = Literal["dense", "sparse", "delay_dense", "conv"]
SignMode = Literal["auto", "mixed", "exc", "inh"]


@dataclass(frozen=True, eq=False)
class Port:
    """An input port: a flat vector of ``size`` channels fed from the host.

    ``message_bits == 0``: binary spikes (0/1). ``> 0``: graded payloads, signed
    integers clamped to ``num_message_bits`` bits two's complement range.
    """

    name: str
    size: int
    shape: tuple[int, ...]
    message_bits: int = 0


@dataclass(frozen=True, eq=False)
class NeuronGroup:
    """A CUBA LIF population with Lava's fixed-point parameters.

    ``du``, ``dv`` (0..4095) and ``vth`` (threshold mantissa; spikes when
    ``v > vth << 6``) are scalars per group, as in Lava's LIF process.
    ``bias_mant``/``bias_exp``/``u0``/``v0`` are int arrays of length ``size``.
    ``lif_reset`` adds Lava's LIFReset: u = v = 0 at steps where
    ``t % reset_interval == reset_offset % reset_interval``.
    """

    name: str
    model: NeuronModel
    size: int
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    u0: np.ndarray
    v0: np.ndarray
    reset_interval: int = 0
    reset_offset: int = 0


@dataclass(frozen=True, eq=False)
class SynapseBlock:
    """Synapses from ``source`` (a port or a group) to ``target`` (a group).

    dense / delay_dense: ``weights`` int (n_target, n_source), full-scale
    integers as Lava's Dense takes them (clipped and LSB-truncated by
    ``sign_mode`` and ``num_weight_bits`` when loaded, then shifted by
    ``weight_exp`` after summation).
    sparse: ``weights`` dense (n_target, n_source) matrix in memory; only the
    non-zero entries exist as synapses (stored as COO in the file).
    delay_dense: ``delays`` int (n_target, n_source), 0..62.
    conv: ``weights`` int (C_out, Kw, Kh, C_in) in Lava's layout (true
    convolution); ``conv`` holds stride, padding, dilation as (x, y) pairs and
    ``groups``; source and target shapes are (W, H, C). Lava ignores
    ``weight_exp`` and ``num_weight_bits`` on Conv; so does the emulator.
    ``num_message_bits``: 0 binary spikes, > 0 graded payloads from the source.
    """

    name: str
    kind: BlockKind
    source: str
    target: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: SignMode = "auto"
    num_message_bits: int = 0
    delays: np.ndarray | None = None
    conv: dict[str, tuple[int, int] | int] | None = None


@dataclass(frozen=True, eq=False)
class Core:
    """One neuromorphic core: where groups and the synapse blocks into them live."""

    index: int
    chip: int
    groups: tuple[str, ...]
    blocks: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class OutputPort:
    """Spikes of ``group`` returned to the host under ``name``."""

    name: str
    group: str


@dataclass(frozen=True, eq=False)
class Program:
    """A whole program image. ``target_toml`` is the target file's text, embedded
    verbatim; ``target_hash`` is the sha256 hex digest of its UTF-8 bytes."""

    target_name: str
    target_hash: str
    target_toml: str
    ports: tuple[Port, ...]
    groups: tuple[NeuronGroup, ...]
    blocks: tuple[SynapseBlock, ...]
    cores: tuple[Core, ...]
    outputs: tuple[OutputPort, ...]
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
