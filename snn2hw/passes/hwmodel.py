"""The hardware model the passes build up: neuron groups and synapse blocks in integers.

A *group* is a set of neurons of one population that share decays, threshold and
scale (one Lava LIF process, one ``NeuronGroup`` of the program image). A *block*
is the synapses from one source population into one group. Blocks keep their
weights in the source population's NIR flat order; the backend slices columns by
the source's groups when it writes the program image.

Integer conventions are Lava's (specs/loihi_fixed_point.md §1.2-1.3): ``weights``
are full-scale (what Lava's Dense takes), the weighted sum is shifted by
``weight_exp``; ``scale`` is the population's float-to-v factor: v_int = scale * v.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Group models that send graded payloads (Lava's SigmaDelta, Delta and Sigma).
SIGMA_DELTA_MODELS = ("sigma_delta", "delta", "sigma")


@dataclass(frozen=True, eq=False)
class HwGroup:
    name: str
    population: str
    index: np.ndarray            # NIR flat indices of the population, in hardware order
    shape: tuple[int, ...]       # hardware shape ((W, H, C) for convolution layouts)
    model: str                   # "lif", "readout", or a sigma-delta model:
                                 # "sigma_delta" | "delta" | "sigma" (SIGMA_DELTA_MODELS)
    du: int
    dv: int
    vth: int
    scale: float
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    v0: np.ndarray
    offset: int                  # steps the hardware runs behind the reference
    reset_interval: int = 0
    reset_offset: int = 0
    core: int = -1
    chip: int = -1
    # sigma-delta groups only (the program's NeuronGroup fields; docs/sigma_delta.md §6):
    # vth and bias_mant are then the process arguments, scaled by 2^(spike_exp + state_exp)
    act_mode: str = "relu"
    spike_exp: int = 0
    state_exp: int = 0
    cum_error: bool = False
    # sigma-delta groups compiled from a NIR graph: payload units per unit of the float
    # reference's payloads (0: none, e.g. a netx file's groups; execute.py aligns by it)
    payload_scale: float = 0.0

    @property
    def size(self) -> int:
        return int(self.index.size)


@dataclass(frozen=True, eq=False)
class HwBlock:
    name: str
    source: str                  # source population (an Input or a neuron node)
    target: str                  # HwGroup name
    kind: str                    # dense | conv | codebook (sparse/delay chosen when written)
    weights: np.ndarray          # full-scale ints (n_target, n_source), dense or, for an
                                 # unrolled convolution, a scipy csr matrix; indices for codebook;
                                 # conv: kernel (C_out, Kw, Kh, C_in/groups), Lava layout
    weight_exp: int
    num_weight_bits: int
    sign_mode: str
    delay: int = 0
    recurrent: bool = False
    codebook: np.ndarray | None = None
    conv: dict[str, Any] | None = None
    num_message_bits: int = 0    # 0: binary spikes from the source; > 0: graded payloads

    def full_scale(self) -> np.ndarray:
        """Full-scale integer weights (codebook indices looked up; -1 -> no synapse = 0)."""
        w = self.weights
        if self.codebook is None:
            return w
        rows = self.codebook if self.codebook.shape[0] > 1 else \
            np.broadcast_to(self.codebook, (w.shape[0], self.codebook.shape[1]))
        return np.where(w >= 0, np.take_along_axis(rows, np.maximum(w, 0), axis=1), 0)

    def effective(self) -> np.ndarray:
        """Weights as the core applies them, in a-units (before the <<6), as float
        (sparse where the weights are)."""
        return self.full_scale().astype(float) * 2.0 ** self.weight_exp

    def row_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Per target neuron: sums of positive and of negative (magnitude) effective
        weights (not for conv blocks)."""
        w = self.effective()
        if sp.issparse(w):
            return (np.asarray(w.maximum(0).sum(axis=1)).ravel(),
                    np.asarray((-w).maximum(0).sum(axis=1)).ravel())
        return np.clip(w, 0, None).sum(axis=1), np.clip(-w, 0, None).sum(axis=1)


def dense(w: np.ndarray | sp.spmatrix) -> np.ndarray:
    """A block's weight matrix as a dense array."""
    return w.toarray() if sp.issparse(w) else w


def csr_fields(w: sp.spmatrix) -> dict[str, np.ndarray]:
    """A csr weight matrix as NIR-storable arrays (read back by :func:`from_csr_fields`):
    an unrolled convolution is never stored densely."""
    m = sp.csr_matrix(w)
    return {"csr_data": m.data, "csr_indices": m.indices, "csr_indptr": m.indptr,
            "csr_shape": np.asarray(m.shape)}


def from_csr_fields(d: dict[str, Any]) -> sp.csr_matrix:
    shape = tuple(int(n) for n in np.ravel(d["csr_shape"]))
    return sp.csr_matrix((np.asarray(d["csr_data"], dtype=np.int64),
                          np.asarray(d["csr_indices"]), np.asarray(d["csr_indptr"])),
                         shape=shape)


def values(w: np.ndarray | sp.spmatrix) -> np.ndarray:
    """The stored values of a weight matrix (a sparse matrix's non-zeros)."""
    return w.data if sp.issparse(w) else np.asarray(w)


@dataclass(frozen=True, eq=False)
class HwNet:
    groups: tuple[HwGroup, ...]
    blocks: tuple[HwBlock, ...]
    layouts: dict[str, np.ndarray]           # population -> NIR flat index per hardware index
    shapes: dict[str, tuple[int, ...]]       # population -> hardware shape
    inputs: tuple[str, ...]                  # Input populations (ports)
    outputs: dict[str, str]                  # Output node -> population
    report: dict[str, Any] = field(default_factory=dict)
    spatial: dict[str, tuple[int, ...]] = field(default_factory=dict)   # population -> NIR
                                             # shape, where the mapper may tile it spatially
    port_bits: dict[str, int] = field(default_factory=dict)   # input -> graded payload bits
                                             # (absent: binary spikes)
    stats: dict[str, Any] | None = None      # population -> calibrated float bounds the
                                             # scales were chosen by (passes/bounds.Stats;
                                             # None: the worst case), for the range check

    def groups_of(self, population: str) -> list[HwGroup]:
        return [g for g in self.groups if g.population == population]

    def group(self, name: str) -> HwGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def blocks_into(self, group: str) -> list[HwBlock]:
        return [b for b in self.blocks if b.target == group]

    def with_(self, **changes: Any) -> HwNet:
        return replace(self, **changes)


def to_metadata(net: HwNet) -> dict[str, Any]:
    """A NIR-storable dict (str, numbers, arrays, nested dicts) of the whole model."""
    def group(g: HwGroup) -> dict[str, Any]:
        return {k: v for k, v in vars(g).items() if k != "name"}

    def block(b: HwBlock) -> dict[str, Any]:
        out = {k: csr_fields(v) if k == "weights" and sp.issparse(v) else v
               for k, v in vars(b).items() if k != "name" and v is not None}
        if b.conv is not None:
            out["conv"] = {k: np.asarray(v) if np.ndim(v) else int(v) for k, v in b.conv.items()}
        return out

    return {"groups": {g.name: group(g) for g in net.groups},
            "blocks": {b.name: block(b) for b in net.blocks},
            "outputs": dict(net.outputs)}


__all__ = ["SIGMA_DELTA_MODELS", "HwBlock", "HwGroup", "HwNet", "dense", "to_metadata", "values"]
