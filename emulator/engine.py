"""The vectorised engine: runs a program image on batches of input spikes.

Numerics are those of kernels.py (tested against it and against Lava). Three modes
give identical results:

* ``batch``: every sample at once; where no cycle runs through several groups, each
  block once for all steps (timebatch.py: one product over batch x time, only the
  neuron recurrence stepping), otherwise as ``step``.
* ``step``: every sample at once, one matrix product per block and step. Products are
  done in float32/float64 BLAS only where the sum is provably exact (|partial sums| <
  2^24 resp. 2^53), else in int64.
* ``event``: one sample at a time, summing only the weight columns of inputs that
  spiked (cost proportional to spikes: the single-stream, event-driven mode).

A sparse block held as a csr matrix stays one: its effective weights are computed on
the stored values and its product is csr @ x in int64 (exact; no float shortcut).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from snn2hw_emulator import cost as costmod
from snn2hw_emulator import sigma_delta as sdmod
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.family import LAVA, LoihiLif
from snn2hw_emulator.image import target_of, validate
from snn2hw_emulator.inputs import check_inputs
from snn2hw_emulator.kernels import GRADED_MODELS, SD_STATE, STATE_VARS
from snn2hw_emulator.program import (
    NeuronGroup,
    Program,
    SynapseBlock,
    expanded_weights,
    is_sparse,
    synapse_mask,
)
from snn2hw_emulator.xylo_program import is_xylo

MODES = ("batch", "step", "event")
#: where batch mode runs: numpy/numba ("cpu"), or torch (torchengine.py) on the CPU
#: ("cpu-torch") or a CUDA GPU ("cuda", "cuda:N")
ACCELERATORS = ("cpu", "cpu-torch", "cuda")
_VALIDATED: weakref.WeakSet[Program] = weakref.WeakSet()
#: a program's prepared blocks and their device copies, made once per program object
_PREPARED: weakref.WeakKeyDictionary[Program, list] = weakref.WeakKeyDictionary()
_DEVICE: weakref.WeakKeyDictionary[Program, dict] = weakref.WeakKeyDictionary()
RECORDABLE = ("spikes", "u", "v", *SD_STATE)   # which groups have which: kernels.STATE_VARS
__all__ = ["MODES", "RECORDABLE", "Result", "check_inputs", "concatenate", "run"]


def wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + 2**31) & (2**32 - 1)) - 2**31


def trunc_decay(x: np.ndarray, keep: int, decay_bits: int) -> np.ndarray:
    """x * keep / 2^decay_bits rounded toward zero (kernels.trunc_decay)."""
    p = x * keep
    return np.where(p < 0, -((-p) >> decay_bits), p >> decay_bits)


def floor_shift(x: np.ndarray, exp: int) -> np.ndarray:
    return x << exp if exp >= 0 else x >> -exp


# --------------------------------------------------------------------------- preparation


def effective_weights(block: SynapseBlock, arith: LoihiLif = LAVA
                      ) -> np.ndarray | sp.csr_matrix:
    """Lava's clip_weights + truncate_weights, vectorised (see kernels.effective_weight),
    applied to the full-scale matrix (a codebook block's looked-up weights); a csr
    matrix's stored values are transformed in place of the matrix (zeros stay zeros).
    ``arith``: the target's family record (default: Lava's)."""
    w = expanded_weights(block)
    if is_sparse(w):
        return sp.csr_matrix((_clip_truncate(w.data, block, arith), w.indices, w.indptr),
                             shape=w.shape)
    return _clip_truncate(w, block, arith)


def _clip_truncate(w: np.ndarray, block: SynapseBlock, arith: LoihiLif) -> np.ndarray:
    mode = block.sign_mode
    if mode == "auto":       # implicit zeros of a csr matrix change nothing here
        mode = "exc" if w.size == 0 or w.min() >= 0 else ("inh" if w.max() <= 0 else "mixed")
    if mode == "inh":
        w = -w
    lo, hi = arith.clip_range("mixed" if mode == "mixed" else "exc")  # inh: on the magnitude
    w = np.clip(w, lo, hi)
    n = arith.dropped_bits(mode, block.num_weight_bits)
    w = (w >> n) << n
    return -w if mode == "inh" else w


@dataclass
class _Block:
    spec: SynapseBlock
    weights: np.ndarray                    # effective int64 weights
    graded: bool
    buckets: list[tuple[int, np.ndarray]]  # delay_dense: (delay, weights with that delay)
    depth: int                             # buffer length (max delay + 1)
    nnz_col: np.ndarray                    # synapses per source neuron (for synop counts)
    arith: LoihiLif                        # the target's family record
    fast: dict[int, np.ndarray] = field(default_factory=dict)

    def matrices(self) -> list[tuple[int, np.ndarray]]:
        return self.buckets if self.buckets else [(0, self.weights)]


def _prepare(block: SynapseBlock, arith: LoihiLif = LAVA) -> _Block:
    if block.kind == "conv":
        w = np.asarray(block.weights, dtype=np.int64)   # Lava Conv: no clip, no truncation
        nnz = np.zeros(0)
        return _Block(block, w, block.num_message_bits > 0, [], 1, nnz, arith)
    w = effective_weights(block, arith)
    buckets: list[tuple[int, np.ndarray]] = []
    depth = 1
    if block.kind == "delay_dense":
        d = np.asarray(block.delays, dtype=np.int64)
        buckets = [(int(k), np.where(d == k, w, 0)) for k in np.unique(d)]
        depth = int(d.max()) + 1 if d.size else 1
    # synops: non-zero effective weights; a codebook block: every existing synapse
    if is_sparse(w):
        nnz = np.bincount(w.indices[w.data != 0], minlength=w.shape[1])
    else:
        present = synapse_mask(block) if block.kind == "codebook" else w != 0
        nnz = np.count_nonzero(present, axis=0)
    return _Block(block, w, block.num_message_bits > 0, buckets, depth, nnz, arith)


def _prepared(program: Program) -> list[_Block]:
    """The program's blocks prepared once (effective weights, delay buckets, synapse
    counts, and the engines' cached product matrices in ``fast``), not once per run."""
    if program not in _PREPARED:
        arith = target_of(program).numeric
        _PREPARED[program] = [_prepare(b, arith) for b in program.blocks]
    return _PREPARED[program]


def _device_cache(program: Program) -> dict:
    """Per-program storage for an accelerator's copies of the weights."""
    return _DEVICE.setdefault(program, {})


def _matmul(blk: _Block, k: int, w: np.ndarray, src: np.ndarray, bound: float) -> np.ndarray:
    """src (B, n_in) @ w.T exactly: float BLAS when the bound proves it exact; a csr
    matrix in int64 (scipy's integer kernels)."""
    if is_sparse(w):
        return np.asarray(w @ src.T, dtype=np.int64).T
    if bound < 2**53:
        dtype = np.float32 if bound < 2**24 else np.float64
        key = k * 2 + (dtype is np.float32)
        if key not in blk.fast:
            blk.fast[key] = np.ascontiguousarray(w.T, dtype=dtype)
        return (src.astype(dtype) @ blk.fast[key]).astype(np.int64)
    return src @ w.T


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """spikes/u/v: group -> (B, T, n); ``outputs``: output name -> spikes (B, T, n).
    ``saturation``: group -> {"v_clip": events, "u_wrap": events, "first_step": t or 0}.
    Sigma-delta groups: ``spikes`` holds their int32 payloads, ``sigma``/``act``/
    ``residue``/``error`` their state (when recorded); they have no u, v."""

    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    saturation: dict[str, dict[str, int]]
    cost: costmod.CostReport | None = None
    sigma: dict[str, np.ndarray] = field(default_factory=dict)
    act: dict[str, np.ndarray] = field(default_factory=dict)
    residue: dict[str, np.ndarray] = field(default_factory=dict)
    error: dict[str, np.ndarray] = field(default_factory=dict)


def concatenate(parts: Sequence[Result]) -> Result:
    """Join results of consecutive batch slices."""
    if parts and not isinstance(parts[0], Result):      # Xylo results
        from snn2hw_emulator import xylo_engine

        return xylo_engine.concatenate(parts)           # type: ignore[arg-type]
    def cat(attr: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, attr)[k] for p in parts])
                for k in getattr(parts[0], attr)}

    sat: dict[str, dict[str, int]] = {}
    for p in parts:
        for g, d in p.saturation.items():
            s = sat.setdefault(g, {"v_clip": 0, "u_wrap": 0, "first_step": 0})
            s["v_clip"] += d["v_clip"]
            s["u_wrap"] += d["u_wrap"]
            firsts = [x for x in (s["first_step"], d["first_step"]) if x]
            s["first_step"] = min(firsts) if firsts else 0
    costs = [p.cost for p in parts if p.cost is not None]
    return Result(cat("spikes"), cat("u"), cat("v"), cat("outputs"), sat,
                  costmod.concatenate(costs) if costs else None,
                  **{var: cat(var) for var in SD_STATE})


# --------------------------------------------------------------------------- the run


class _State:
    def __init__(self, program: Program, batch: int, arith: LoihiLif) -> None:
        self.arith = arith
        self.u = {g.name: np.tile(np.asarray(g.u0, np.int64), (batch, 1)) for g in program.groups}
        self.v = {g.name: np.tile(np.asarray(g.v0, np.int64), (batch, 1)) for g in program.groups}
        self.bias: dict[str, np.ndarray] = {}
        for g in program.groups:  # bias_mant << bias_exp, floor shift for negative exponents
            exp = np.asarray(g.bias_exp, np.int64)
            mant = np.asarray(g.bias_mant, np.int64)
            self.bias[g.name] = np.where(exp >= 0, mant << np.maximum(exp, 0),
                                         mant >> np.maximum(-exp, 0))
        self.sd = {g.name: sdmod.SigmaDeltaState(g, batch) for g in program.groups
                   if g.model in GRADED_MODELS}


def lif_update(g: NeuronGroup, st: _State, a: np.ndarray, t: int,
               sat: dict[str, int]) -> np.ndarray:
    """Vectorised kernels.lif_step for a whole group and batch, in the target's widths
    (``st.arith``); returns spikes."""
    f = st.arith
    u, v = st.u[g.name], st.v[g.name]
    if g.model == "lif_reset" and t % g.reset_interval == g.reset_offset % g.reset_interval:
        u[:] = 0
        v[:] = 0
    u = wrap32(trunc_decay(u, f.decay_one - (g.du + f.du_offset), f.decay_bits)
               + wrap32(a << f.act_shift))
    half = f.state_half
    wrapped = (u > half) | (u <= -half)
    u = np.where(u > half, u - 2 * half, np.where(u <= -half, u + 2 * half, u))
    v = wrap32(trunc_decay(v, f.decay_one - g.dv, f.decay_bits) + u + st.bias[g.name])
    clipped = (v > f.v_max) | (v < -f.v_max)
    v = np.clip(v, -f.v_max, f.v_max)
    s = v > (g.vth << f.act_shift)
    v = np.where(s, 0, v)
    st.u[g.name], st.v[g.name] = u, v
    n_wrap, n_clip = int(wrapped.sum()), int(clipped.sum())
    if (n_wrap or n_clip) and not sat["first_step"]:
        sat["first_step"] = t
    sat["u_wrap"] += n_wrap
    sat["v_clip"] += n_clip
    return s


def _conv(blk: _Block, src: np.ndarray, size_in: tuple[int, ...], size_out: tuple[int, ...]
          ) -> np.ndarray:
    """Lava Conv over a batch: true convolution in (X, Y, C); the output register
    (``conv_bits`` wide) wraps."""
    c = blk.spec.conv or {}
    (sx, sy), (px, py), (dx, dy) = c["stride"], c["padding"], c["dilation"]
    groups = int(c["groups"])
    b = src.shape[0]
    xin, yin, cin = size_in
    xo, yo, co = size_out
    w = blk.weights[:, ::-1, ::-1, :]                     # flip: Lava convolves
    kw, kh = w.shape[1], w.shape[2]
    x = np.zeros((b, xin + 2 * px, yin + 2 * py, cin), dtype=np.int64)
    x[:, px:px + xin, py:py + yin, :] = src.reshape(b, xin, yin, cin)
    if not blk.graded:
        x = (x != 0).astype(np.int64)
    out = np.zeros((b, xo, yo, co), dtype=np.int64)
    cg, og = cin // groups, co // groups
    for i in range(kw):
        for j in range(kh):
            patch = x[:, i * dx: i * dx + sx * (xo - 1) + 1: sx,
                      j * dy: j * dy + sy * (yo - 1) + 1: sy, :]
            for gi in range(groups):
                out[..., gi * og:(gi + 1) * og] += patch[..., gi * cg:(gi + 1) * cg] @ \
                    w[gi * og:(gi + 1) * og, i, j, :].T
    half = 1 << (blk.arith.conv_bits - 1)
    return (((out + half) & (2 * half - 1)) - half).reshape(b, -1)


def _columns(blk: _Block, k: int, w: np.ndarray | sp.csr_matrix
             ) -> np.ndarray | sp.csc_matrix:
    """The matrix for column selection by spiking inputs: csc where the weights are sparse
    (its columns are contiguous), the matrix itself otherwise."""
    if not is_sparse(w):
        return w
    key = -1 - k
    if key not in blk.fast:
        blk.fast[key] = w.tocsc()
    return blk.fast[key]


def _accumulate(blk: _Block, src: np.ndarray, mode: str, shapes: Mapping[str, tuple[int, ...]],
                payload_max: int) -> list[tuple[int, np.ndarray]]:
    """(delay, activation) pairs for this step's source values ``src`` (B, n_in)."""
    spec = blk.spec
    if spec.kind == "conv":
        return [(0, _conv(blk, src, shapes[spec.source], shapes[spec.target]))]
    x = src if blk.graded else (src != 0).astype(np.int64)
    out = []
    for k, w in blk.matrices():
        if mode == "event":
            acc = np.zeros((x.shape[0], w.shape[0]), dtype=np.int64)
            cols = _columns(blk, k, w)
            for i in range(x.shape[0]):
                idx = np.flatnonzero(x[i])
                if idx.size:
                    acc[i] = cols[:, idx] @ x[i, idx]
        else:
            acc = _matmul(blk, k, w, x, float(blk.arith.weight_bound) * payload_max *
                          max(1, w.shape[1]))
        if blk.graded and spec.kind != "delay_dense":   # Lava: int32 weights.dot(s) wraps
            acc = wrap32(acc)
        out.append((k, wrap32(floor_shift(acc, spec.weight_exp))))
    return out


def _step_group(g: NeuronGroup, st: _State, a: np.ndarray, t: int, sat: dict[str, int],
                counter: costmod.Counter | None, rec: dict[str, dict[str, np.ndarray]]
                ) -> np.ndarray:
    """Update one group for step t, count and record it; returns what it sends (B, n):
    0/1 spikes (LIF) or payloads (sigma-delta)."""
    if g.model in GRADED_MODELS:
        sd = st.sd[g.name]
        active = sd.active(a)
        s = sdmod.update(g, sd, a)
        state = sd.vars
    else:
        active = (a != 0) | (st.u[g.name] != 0) | (st.v[g.name] != 0)
        s = lif_update(g, st, a, t, sat).astype(np.int64)
        state = {"u": st.u[g.name], "v": st.v[g.name]}
    if counter is not None:
        counter.neurons(g.name, t, active, s != 0)
    rec["spikes"][g.name][:, t - 1] = s
    for var, value in state.items():
        if var in rec:
            rec[var][g.name][:, t - 1] = value
    return s


def run(program: Program, inputs: Any, *, steps: int | None = None,
        record: Sequence[str] = ("spikes",), mode: str = "batch", cost: bool = True,
        accelerator: str = "cpu") -> Result:
    """Run ``program`` on ``inputs`` (port -> (B, T_in, size) ints) for ``steps`` steps
    (default T_in; later steps get no input). Step t is index t-1 on the time axis. A Xylo
    program runs on xylo_engine (its own variables: spikes, v, i_syn, i_syn2).
    ``accelerator`` other than "cpu": batch mode in torch on that device (torchengine)."""
    if is_xylo(program):
        from snn2hw_emulator import xylo_engine

        if accelerator != "cpu":
            raise InputError(f"a Xylo program runs on the CPU only (accelerator "
                             f"'{accelerator}')", hint="Run it without --accelerator.")
        return xylo_engine.run_program(program, inputs, steps=steps, record=record,
                                       mode=mode, cost=cost)
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", hint=f"Use one of {', '.join(MODES)}.")
    if accelerator != "cpu" and mode != "batch":
        raise InputError(f"mode '{mode}' runs on the CPU only (accelerator '{accelerator}')",
                         hint="Use mode 'batch' with an accelerator.")
    bad = sorted(set(record) - set(RECORDABLE))
    if bad:
        raise InputError(f"cannot record '{bad[0]}'",
                         hint=f"Record any of {', '.join(RECORDABLE)}.")
    if program not in _VALIDATED:           # a program object is checked once, not per run
        validate(program)
        _VALIDATED.add(program)
    data, batch, steps = check_inputs(program, inputs, steps)
    if accelerator != "cpu":
        from snn2hw_emulator import torchengine

        return torchengine.run(program, data, batch, steps, record, cost, accelerator)
    if mode == "batch":
        from snn2hw_emulator import timebatch

        groups = timebatch.order(program)
        if groups is not None:
            return timebatch.run(program, data, batch, steps, record, cost, groups)
    target = target_of(program)
    blocks = _prepared(program)
    into: dict[str, list[int]] = {g.name: [] for g in program.groups}
    for i, blk in enumerate(blocks):
        into[blk.spec.target].append(i)
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    payload = {p.name: (2 ** (p.message_bits - 1) if p.message_bits else 1) for p in
               program.ports} | {g.name: 2**31 if g.model in GRADED_MODELS else 1
                                 for g in program.groups}
    st = _State(program, batch, target.numeric)
    buffers = [np.zeros((batch, blk.spec.weights.shape[0] if blk.spec.kind != "conv"
                         else int(np.prod(shapes[blk.spec.target])), blk.depth), np.int64)
               for blk in blocks]
    rec = {var: {g.name: np.zeros((batch, steps, g.size), np.int8 if var == "spikes" and
                                  g.model not in GRADED_MODELS else np.int32)
                 for g in program.groups if var == "spikes" or
                 var in STATE_VARS[g.model]}
           for var in RECORDABLE if var in record or var == "spikes"}
    sat = {g.name: {"v_clip": 0, "u_wrap": 0, "first_step": 0} for g in program.groups}
    counter = costmod.Counter(program, target, batch, steps, blocks) if cost else None
    spikes: dict[str, np.ndarray] = {}
    for t in range(1, steps + 1):
        for g in program.groups:
            a = np.zeros((batch, g.size), np.int64)
            for i in into[g.name]:
                a = wrap32(a + buffers[i][:, :, 0])
            spikes[g.name] = _step_group(g, st, a, t, sat[g.name], counter, rec)
        for i, blk in enumerate(blocks):
            src_name = blk.spec.source
            if src_name in data:
                col = t - 1
                src = (data[src_name][:, col] if col < data[src_name].shape[1]
                       else np.zeros((batch, data[src_name].shape[2]), np.int64))
            else:
                src = spikes[src_name]
            buf = buffers[i]
            buf[:, :, 0] = 0
            buf = np.roll(buf, -1, axis=2) if blk.depth > 1 else buf
            for k, act in _accumulate(blk, src, mode, shapes, payload[src_name]):
                buf[:, :, k] += act
            buffers[i] = buf
            if counter is not None:
                counter.synapses(i, t, src)
    outputs = {o.name: rec["spikes"][o.group] for o in program.outputs}
    report = counter.report() if counter is not None else None
    return Result(rec["spikes"], rec.get("u", {}), rec.get("v", {}), outputs, sat, report,
                  **{var: rec.get(var, {}) for var in SD_STATE})
