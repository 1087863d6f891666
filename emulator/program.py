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

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

FORMAT_NAME = "snn2hw-program"
#: Version written by this emulator. Version 2 added codebook synapse blocks, version 3
#: sigma-delta neuron groups; older files are read unchanged.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
#: The first format version that can hold ``kind == "codebook"`` blocks.
CODEBOOK_VERSION = 2
#: The first format version that can hold sigma_delta, delta and sigma groups.
SIGMA_DELTA_VERSION = 3
#: Extra bits a delay_dense synapse stores (6-bit delay field).
DELAY_BITS = 6

NeuronModel = Literal["lif", "lif_reset", "sigma_delta", "delta", "sigma"]
ActMode = Literal["relu", "unit"]
BlockKind = Literal["dense", "sparse", "delay_dense", "conv", "codebook"]
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
    """A neuron population with Lava's fixed-point parameters.

    ``lif`` / ``lif_reset`` (CUBA LIF): ``du``, ``dv`` (0..2^decay_bits - 1) and ``vth``
    (threshold mantissa; spikes when ``v > vth << act_shift``; widths from the target's
    family record, family.LoihiLif) are scalars per group, as in Lava's LIF
    process. ``bias_mant``/``bias_exp``/``u0``/``v0`` are int arrays of length ``size``.
    ``lif_reset`` adds Lava's LIFReset: u = v = 0 at steps where
    ``t % reset_interval == reset_offset % reset_interval``.

    ``sigma_delta`` (Lava's SigmaDelta, docs/sigma_delta.md): ``vth`` and ``bias_mant``
    (the per-neuron bias) are the process arguments, scaled by
    ``2^(spike_exp + state_exp)`` inside; ``act_mode`` "relu" or "unit"; ``cum_error``;
    ``du``, ``dv``, ``bias_exp``, ``u0``, ``v0`` are 0. The group sends graded payloads.
    ``delta`` (Lava's Delta, netx SDNN input layers): the same without sigma, bias and
    ReLU; its activation is ``a << (spike_exp + state_exp)``. ``sigma`` (Lava's Sigma,
    netx ``sigma_output`` layers): sends its running sum; no parameters.
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
    act_mode: ActMode = "relu"
    cum_error: bool = False
    spike_exp: int = 0
    state_exp: int = 0


@dataclass(frozen=True, eq=False)
class SynapseBlock:
    """Synapses from ``source`` (a port or a group) to ``target`` (a group).

    dense / delay_dense: ``weights`` int (n_target, n_source), full-scale
    integers as Lava's Dense takes them (clipped and LSB-truncated by
    ``sign_mode`` and ``num_weight_bits`` when loaded, then shifted by
    ``weight_exp`` after summation).
    sparse: ``weights`` a ``scipy.sparse.csr_matrix`` (n_target, n_source) of
    full-scale ints (what :func:`load` gives), or a dense numpy matrix of that shape;
    either way only the non-zero entries exist as synapses (stored as COO in the
    file). Nothing here densifies a csr matrix (an unrolled PilotNet convolution would
    take gigabytes).
    delay_dense: ``delays`` int (n_target, n_source), 0..62.
    conv: ``weights`` int (C_out, Kw, Kh, C_in) in Lava's layout (true
    convolution); ``conv`` holds stride, padding, dilation as (x, y) pairs and
    ``groups``; source and target shapes are (W, H, C). Lava ignores
    ``weight_exp`` and ``num_weight_bits`` on Conv; so does the emulator.
    codebook (weight sharing): ``codebook`` int (R, K) holds full-scale weight values
    (R == 1: one table for the block, "layer" scope; R == n_target: one table per
    post-synaptic neuron, "neuron" scope); ``weights`` int (n_target, n_source) holds
    indices in -1..K-1, -1 meaning "no synapse". The block then behaves exactly like a
    dense block with ``expanded_weights(block)`` (same clip, truncation, sign mode
    determined from the expanded matrix, ``weight_exp``, graded input, latency).
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
    codebook: np.ndarray | None = None


def is_sparse(weights: object) -> bool:
    """True where a block's ``weights`` are a scipy sparse matrix (kind "sparse")."""
    return sp.issparse(weights)


def coo_entries(w: np.ndarray | sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the non-zero entries of a weight matrix in row-major order:
    from a scipy sparse matrix without densifying it, or from a dense matrix (the same
    arrays for the same weights; the program file's COO layout)."""
    if is_sparse(w):
        m = sp.csr_matrix(w, copy=True)
        m.sum_duplicates()                       # also sorts the indices within rows
        m.eliminate_zeros()
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        return rows, m.indices, m.data
    w = np.asarray(w)
    rows, cols = np.nonzero(w)
    return rows, cols, w[rows, cols]


def expanded_weights(block: SynapseBlock) -> np.ndarray | sp.csr_matrix:
    """The block's full-scale (n_target, n_source) int64 weight matrix, before Lava's clip
    and truncation: a codebook block's indices looked up in its table (-1 -> 0, no
    synapse); dense, sparse and delay_dense blocks' ``weights`` as they are (a csr
    matrix stays a csr matrix). Conv blocks have no such matrix (ValueError)."""
    if block.kind == "conv":
        raise ValueError(f"block '{block.name}' is a convolution: it has no dense matrix")
    if is_sparse(block.weights):
        return sp.csr_matrix(block.weights, dtype=np.int64)
    w = np.asarray(block.weights, dtype=np.int64)
    if block.kind != "codebook":
        return w
    if block.codebook is None:
        raise ValueError(f"codebook block '{block.name}' has no codebook table")
    table = np.asarray(block.codebook, dtype=np.int64)
    if w.ndim != 2 or table.ndim != 2 or table.shape[0] not in (1, w.shape[0]) or \
            table.shape[1] < 1:
        raise ValueError(f"codebook block '{block.name}': table {table.shape} does not fit "
                         f"indices {w.shape}")
    rows = np.broadcast_to(table, (w.shape[0], table.shape[1]))
    return np.where(w >= 0, np.take_along_axis(rows, np.maximum(w, 0), axis=1), 0)


def synapse_mask(block: SynapseBlock) -> np.ndarray | sp.csr_matrix:
    """Bool (n_target, n_source): where a synapse exists (non-conv blocks). Codebook:
    index >= 0; dense, sparse, delay_dense: a non-zero full-scale weight (a csr bool
    matrix for csr weights)."""
    if block.kind == "conv":
        raise ValueError(f"block '{block.name}' is a convolution: it has no dense matrix")
    if is_sparse(block.weights):
        w = sp.csr_matrix(block.weights)
        return sp.csr_matrix((w.data != 0, w.indices, w.indptr), shape=w.shape)
    w = np.asarray(block.weights)
    return w >= 0 if block.kind == "codebook" else w != 0


def _bits_for(n: int) -> int:
    """ceil(log2(n)) bits to tell n things apart, at least 1."""
    return max(1, math.ceil(math.log2(max(int(n), 2))))


def synapse_memory_bits(block: SynapseBlock, n_source: int | None = None,
                        n_target: int | None = None) -> int:
    """Estimated synaptic-memory bits the block occupies on its core (nwb =
    ``num_weight_bits``, nnz = existing synapses, idx(n) = max(1, ceil(log2 n))):

    * dense: n_target * n_source * nwb
    * sparse: nnz * (nwb + idx(n_source))
    * delay_dense: n_target * n_source * (nwb + 6)
    * conv: C_out * Kw * Kh * C_in/groups * nwb (the shared kernel; n_source and
      n_target are not used)
    * codebook: nnz * idx(K) + R * K * nwb, plus nnz * idx(n_source) when the block
      has -1 ("no synapse") entries, which then need an explicit source index.

    ``n_source``/``n_target`` default to the weight matrix's shape; when given for a
    non-conv block they must match it (ValueError otherwise).
    """
    w = block.weights if is_sparse(block.weights) else np.asarray(block.weights)
    nwb = int(block.num_weight_bits)
    if block.kind == "conv":
        return int(w.size) * nwb
    if w.ndim != 2:
        raise ValueError(f"block '{block.name}': weights {w.shape} are not a matrix")
    n_t, n_s = w.shape
    if (n_source is not None and int(n_source) != n_s) or \
            (n_target is not None and int(n_target) != n_t):
        raise ValueError(f"block '{block.name}': weights {w.shape} do not connect "
                         f"{n_source} sources to {n_target} targets")
    mask = synapse_mask(block)
    nnz = int(np.count_nonzero(mask.data if is_sparse(mask) else mask))
    if block.kind == "dense":
        return n_t * n_s * nwb
    if block.kind == "sparse":
        return nnz * (nwb + _bits_for(n_s))
    if block.kind == "delay_dense":
        return n_t * n_s * (nwb + DELAY_BITS)
    if block.kind == "codebook":
        if block.codebook is None:
            raise ValueError(f"codebook block '{block.name}' has no codebook table")
        r, k = np.shape(block.codebook)
        index = nnz * _bits_for(n_s) if nnz < n_t * n_s else 0
        return nnz * _bits_for(k) + r * k * nwb + index
    raise ValueError(f"block '{block.name}': unknown kind '{block.kind}'")


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
