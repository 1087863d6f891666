"""The synaptic memory model: how a block is held on a target (conv, codebook,
delay_dense, dense or sparse) and how many bits of synaptic memory that takes, by the
program image's own formula (``snn2hw_emulator.program.synapse_memory_bits``). The
partitioner sizes parts by it (passes/partition.py, called by the unroller and the
mapper), and the image writer stores blocks as it says (backends/image.py).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.program import SynapseBlock, synapse_memory_bits

from snn2hw.passes.hwmodel import HwBlock
from snn2hw.targets import Target

__all__ = ["storage", "stored_kind"]


def stored_kind(block: HwBlock, target: Target) -> str:
    """How ``block`` is held on ``target``: conv, codebook (where synaptic memory stores
    indices into a shared table), delay_dense, or the smaller of dense and sparse."""
    if block.kind == "conv":
        return "conv"
    if block.kind == "codebook" and target.connectivity.codebook:
        return "codebook"
    if block.delay:
        return "delay_dense"
    if sp.issparse(block.weights):
        dense, sparse = _matrix_bits(block)
        return "sparse" if target.connectivity.sparse and (
            not target.connectivity.dense or sparse < dense) else "dense"
    w = block.full_scale()
    dense = SynapseBlock("m", "dense", "s", "t", w, num_weight_bits=block.num_weight_bits)
    if target.connectivity.sparse and (not target.connectivity.dense or
                                       synapse_memory_bits(replace(dense, kind="sparse"))
                                       < synapse_memory_bits(dense)):
        return "sparse"
    return "dense"


def storage(block: HwBlock, target: Target) -> tuple[str, int]:
    """(program block kind, synaptic memory bits) for ``block`` on ``target``; the bit
    count is the program image's formula (snn2hw_emulator.program.synapse_memory_bits)."""
    kind = stored_kind(block, target)
    if sp.issparse(block.weights):
        return kind, _matrix_bits(block)[kind == "sparse"]
    weights = block.weights if kind in ("conv", "codebook") else block.full_scale()
    spec = SynapseBlock("m", kind, "s", "t", weights, num_weight_bits=block.num_weight_bits,
                        codebook=block.codebook if kind == "codebook" else None)
    return kind, synapse_memory_bits(spec)


def _matrix_bits(block: HwBlock) -> tuple[int, int]:
    """(dense, sparse) synaptic-memory bits of a block held as a csr matrix, by the
    program image's formula (``synapse_memory_bits``) without building the matrix."""
    n_t, n_s = block.weights.shape
    nwb = int(block.num_weight_bits)
    nnz = int(np.count_nonzero(block.weights.data))
    return n_t * n_s * nwb, nnz * (nwb + max(1, math.ceil(math.log2(max(n_s, 2)))))
