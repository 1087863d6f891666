"""The vectorised engine for Xylo programs: batches of samples, bit-exact to xylo_kernels.

Numerics are those of xylo_kernels.py (tested against it and against xylosim). The one
hard part is that every event is a *saturating* add, and saturating adds do not
associate: I_syn must equal what adding each source's events in index order with a
clip after each gives. Repeated events of one source through one synapse add the same
sign, so they collapse to one clip of ``count * w``; across sources the engine sums
exactly (float64 BLAS: every partial sum is below 2^53) and *proves* per synapse that no
prefix of the sequence can leave the state range (I + sum of the positive terms <= max
and I + sum of the negative terms >= min). Where the proof fails, that synapse is
replayed source by source with a clip after each (rare in a well-scaled program; the
saturation counter reports it). Three modes give identical results:

* ``batch``: every sample at once; the input products for all steps in one product
  (input does not depend on the state), then one step at a time for the recurrence.
* ``step``: every sample at once, one product per matrix and step.
* ``event``: one sample at a time, delivering only the sources that spiked, each with a
  clip (the chip's own event loop; no proof needed).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.family import XYLOSIM, XyloIaf
from snn2hw_emulator.xylo_program import HIDDEN, OUTPUT, XyloProgram
from snn2hw_emulator.xylo_result import XyloResult, _Recorder, check_inputs, concatenate

MODES = ("batch", "step", "event")
_VALIDATED: weakref.WeakSet[XyloProgram] = weakref.WeakSet()


def _clip(x: np.ndarray, rng: tuple[int, int]) -> np.ndarray:
    return np.clip(x, rng[0], rng[1])


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return ((x + half) & (2 * half - 1)) - half


def _decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """kernels.decay, vectorised: x >> dash, or sign(x) where that is 0."""
    d = x >> dash
    return np.where(d == 0, np.sign(x), d)


class _Matrix:
    """One weight matrix as delivered: shifted weights (n_src, n_dst) and their positive
    and negative parts (float64) for the exact sums and the no-saturation proof."""

    def __init__(self, w: np.ndarray, shift: int, rec: XyloIaf) -> None:
        self.w = _wrap(np.asarray(w, np.int64).reshape(w.shape[0], -1) << shift,
                       rec.state_bits)
        self.pos = np.maximum(self.w, 0).astype(np.float64)
        self.neg = np.minimum(self.w, 0).astype(np.float64)
        self.live = bool(np.any(self.w))

    def sums(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) parts of counts @ w, exact int64."""
        c = counts.astype(np.float64)
        return (c @ self.pos).astype(np.int64), (c @ self.neg).astype(np.int64)


@dataclass
class _Prepared:
    rec: XyloIaf
    n_syn: int
    w_in: _Matrix
    w_rec: _Matrix
    w_out: _Matrix
    dash_syn: np.ndarray
    dash_mem: np.ndarray
    dash_syn_out: np.ndarray
    dash_mem_out: np.ndarray
    threshold: np.ndarray
    threshold_out: np.ndarray
    bias: np.ndarray
    bias_out: np.ndarray
    levels: list[np.ndarray]            # alias targets by level (level 0: all the rest)
    early: np.ndarray | None            # (n, n) float: 1 where alias i -> j and i < j
    late: np.ndarray | None             # (n, n) float: 1 where alias i -> j and i >= j


def prepare(program: XyloProgram, rec: XyloIaf = XYLOSIM) -> _Prepared:
    a = program.arrays()
    n = program.n_hidden
    early = late = None
    levels = [np.arange(n)]
    src = np.flatnonzero(a["aliases"] >= 0)
    if src.size:
        dst = a["aliases"][src]
        early, late = np.zeros((n, n)), np.zeros((n, n))
        is_early = src < dst
        early[src[is_early], dst[is_early]] = 1.0
        late[src[~is_early], dst[~is_early]] = 1.0
        levels = _alias_levels(n, src[is_early], dst[is_early])
    return _Prepared(
        rec, program.n_syn, _Matrix(a["weights_in"], program.weight_shift_in, rec),
        _Matrix(a["weights_rec"], program.weight_shift_rec, rec),
        _Matrix(a["weights_out"], program.weight_shift_out, rec), a["dash_syn"],
        a["dash_mem"], a["dash_syn_out"][:, None], a["dash_mem_out"], a["threshold"],
        a["threshold_out"], a["bias"], a["bias_out"], levels, early, late)


def _alias_levels(n: int, src: np.ndarray, dst: np.ndarray) -> list[np.ndarray]:
    """Neurons grouped so that a neuron's earlier alias sources (lower index, already
    updated when it updates) are all in lower groups."""
    level = np.zeros(n, np.int64)
    for i, j in sorted(zip(src.tolist(), dst.tolist())):   # sources in index order
        level[j] = max(level[j], level[i] + 1)
    return [np.flatnonzero(level == k) for k in range(int(level.max()) + 1)]


# --------------------------------------------------------------------------- events


def _deliver(i_syn: np.ndarray, parts: Sequence[tuple[_Matrix, np.ndarray]],
             rng: tuple[int, int], sums: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
             ) -> tuple[np.ndarray, int]:
    """I_syn (B, m) after the events of each (matrix, counts (B, n_src)) in order, every
    add clipped; returns (I_syn, number of synapse updates that saturated)."""
    if sums is None:
        sums = [m.sums(c) for m, c in parts]
    pos = sum(p for p, _ in sums)
    neg = sum(q for _, q in sums)
    out = i_syn + pos + neg
    unsafe = (i_syn + pos > rng[1]) | (i_syn + neg < rng[0])
    if not np.any(unsafe):
        return out, 0
    b, j = np.nonzero(unsafe)
    x, hit = _replay(i_syn[b, j], b, j, parts, rng)
    out[b, j] = x
    return out, hit


def _replay(x: np.ndarray, b: np.ndarray, j: np.ndarray,
            parts: Sequence[tuple[_Matrix, np.ndarray]], rng: tuple[int, int]
            ) -> tuple[np.ndarray, int]:
    """The selected synapses (sample b, synapse j), source by source with a clip each."""
    hit = np.zeros(x.shape, bool)
    for m, counts in parts:
        c = counts[b]
        for k in np.flatnonzero(np.any(c, axis=0)):
            raw = x + c[:, k] * m.w[k, j]
            x = _clip(raw, rng)
            hit |= raw != x
    return x, int(hit.sum())


# --------------------------------------------------------------------------- neurons


def _spike(v: np.ndarray, th: np.ndarray, n0: np.ndarray, cap: int, bits: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """kernels.evolve's spike loop: while V >= th and n < cap: V -= th (int16 store)."""
    room = cap - n0
    pos = th > 0
    k = np.where(pos, np.clip(v // np.where(pos, th, 1), 0, room), 0)
    v = v - k * th                       # th > 0: V stays in range
    if not np.all(pos):                  # th <= 0: V rises (and may wrap): step it
        for _ in range(cap):
            more = ~pos & (k < room) & (v >= th)
            if not np.any(more):
                break
            v = np.where(more, _wrap(v - th, bits), v)
            k = k + more
    return v, n0 + k


def _integrate(v: np.ndarray, i_syn: np.ndarray, dash_mem: np.ndarray,
               dash_syn: np.ndarray, bias: np.ndarray, rec: XyloIaf
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decay I_syn (B, n, s), then V += sat(sat(-decay(V) + sum I) + bias); returns (V,
    I_syn, mask of neurons whose dv or V saturated)."""
    rng = rec.state_range
    i_syn = i_syn - _decay(i_syn, dash_syn)
    dv = _wrap(-_decay(v, dash_mem), rec.state_bits)
    raw1 = dv + i_syn.sum(axis=-1)
    raw2 = _clip(raw1, rng) + bias
    raw3 = v + _clip(raw2, rng)
    v = _clip(raw3, rng)
    hit = (raw1 < rng[0]) | (raw1 > rng[1]) | (raw2 < rng[0]) | (raw2 > rng[1]) | (raw3 != v)
    return v, i_syn, hit


def _hidden_spikes(p: _Prepared, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts of every hidden neuron, aliases included; (V, counts)."""
    cap, bits = p.rec.hidden_spikes_max, p.rec.state_bits
    n = np.zeros(v.shape, np.int64)
    for level, idx in enumerate(p.levels):
        n0 = np.zeros((v.shape[0], idx.size), np.int64)
        if level:     # earlier sources' counts (all in lower levels) fill the buffer
            n0 = np.minimum(n @ p.early[:, idx], cap).astype(np.int64)
        v[:, idx], n[:, idx] = _spike(v[:, idx], p.threshold[idx], n0, cap, bits)
    if p.late is not None:   # later sources add after the target's own update
        n = np.minimum(n + (n @ p.late).astype(np.int64), cap)
    return v, n


# --------------------------------------------------------------------------- one step


@dataclass
class _State:
    v: np.ndarray            # (B, n_hidden)
    i_syn: np.ndarray        # (B, n_hidden, n_syn)
    v_out: np.ndarray        # (B, n_out)
    i_out: np.ndarray        # (B, n_out)
    counts: np.ndarray       # (B, n_hidden): last step's hidden spike counts
    sat: dict[str, dict[str, int]]

    @classmethod
    def zeros(cls, program: XyloProgram, batch: int) -> _State:
        nh, no = program.n_hidden, program.n_out
        z = np.zeros
        return cls(z((batch, nh), np.int64), z((batch, nh, program.n_syn), np.int64),
                   z((batch, no), np.int64), z((batch, no), np.int64),
                   z((batch, nh), np.int64),
                   {g: {"i_clip": 0, "v_clip": 0, "first_step": 0} for g in (HIDDEN, OUTPUT)})

    def count(self, group: str, t: int, i_clip: int, v_clip: int) -> None:
        s = self.sat[group]
        s["i_clip"] += i_clip
        s["v_clip"] += v_clip
        if (i_clip or v_clip) and not s["first_step"]:
            s["first_step"] = t


def _events(p: _Prepared, st: _State, x: np.ndarray, t: int, mode: str,
            in_sums: tuple[np.ndarray, np.ndarray] | None) -> None:
    """This step's input events and last step's hidden spikes into I_syn."""
    rng = p.rec.state_range
    b = st.v.shape[0]
    c = st.counts
    parts = [(p.w_in, x)] + ([(p.w_rec, c)] if p.w_rec.live else [])
    flat = st.i_syn.reshape(b, -1)
    if mode == "event":                     # one sample: the chip's own event loop
        flat, hit = _sequential(flat[0], [(m, k[0]) for m, k in parts], rng)
        io, hit_o = _sequential(st.i_out[0], [(p.w_out, c[0])], rng)
        flat, io = flat[None], io[None]
    else:
        sums = None if in_sums is None else [in_sums] + [m.sums(k) for m, k in parts[1:]]
        flat, hit = _deliver(flat, parts, rng, sums)
        io, hit_o = _deliver(st.i_out, [(p.w_out, c)], rng)
    st.i_syn = flat.reshape(st.i_syn.shape)
    st.i_out = io
    st.count(HIDDEN, t, hit, 0)
    st.count(OUTPUT, t, hit_o, 0)


def _sequential(x: np.ndarray, parts: Sequence[tuple[_Matrix, np.ndarray]],
                rng: tuple[int, int]) -> tuple[np.ndarray, int]:
    """One sample's I_syn (m,) after each active source's events (counts (n_src,)) in
    index order, a clip after each; returns (I_syn, synapses that saturated)."""
    hit = np.zeros(x.shape, bool)
    for m, counts in parts:
        for k in np.flatnonzero(counts):
            raw = x + counts[k] * m.w[k]
            x = _clip(raw, rng)
            hit |= raw != x
    return x, int(hit.sum())


def _update(p: _Prepared, st: _State, t: int) -> np.ndarray:
    """Hidden then output neurons; returns the output spike counts."""
    st.v, st.i_syn, hit = _integrate(st.v, st.i_syn, p.dash_mem[None], p.dash_syn[None],
                                     p.bias[None], p.rec)
    st.v, st.counts = _hidden_spikes(p, st.v)
    st.count(HIDDEN, t, 0, int(hit.sum()))
    v, i, hit_o = _integrate(st.v_out, st.i_out[:, :, None], p.dash_mem_out[None],
                             p.dash_syn_out[None], p.bias_out[None], p.rec)
    st.i_out = i[:, :, 0]
    zero = np.zeros(v.shape, np.int64)
    st.v_out, out = _spike(v, p.threshold_out, zero, p.rec.output_spikes_max,
                           p.rec.state_bits)
    st.count(OUTPUT, t, 0, int(hit_o.sum()))
    return out


# --------------------------------------------------------------------------- the run


def run(program: XyloProgram, inputs: Any, *, steps: int | None = None,
        record: Sequence[str] = ("spikes",), mode: str = "batch",
        rec: XyloIaf = XYLOSIM) -> XyloResult:
    """Run ``program`` on input events (B, T_in, n_in) for ``steps`` steps (default
    T_in; later steps get no input). Step t is index t-1 on the time axis."""
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", hint=f"Use one of {', '.join(MODES)}.")
    bad = sorted(set(record) - set(program.recordable()))
    if bad:
        raise InputError(f"cannot record '{bad[0]}' on this Xylo program",
                         hint=f"Record any of {', '.join(program.recordable())}.")
    data, steps = check_inputs(program, inputs, steps)
    data = np.minimum(data, rec.input_events_max)
    p = prepare(program, rec)
    if mode == "event":
        parts = [_run(p, program, data[i:i + 1], steps, record, "event")
                 for i in range(data.shape[0])]
        return concatenate(parts) if parts else _run(p, program, data, steps, record, "step")
    return _run(p, program, data, steps, record, mode)


def run_program(program: XyloProgram, inputs: Any, *, steps: int | None = None,
                record: Sequence[str] = ("spikes",), mode: str = "batch", cost: bool = True
                ) -> XyloResult:
    """:func:`run` for a program image: validated against its embedded target once per
    object, in that target's arithmetic, with the target's cost model."""
    from snn2hw_emulator import xylo_cost
    from snn2hw_emulator.validate import target_of, validate

    if program not in _VALIDATED:
        validate(program)
        _VALIDATED.add(program)
    target = target_of(program)
    res = run(program, inputs, steps=steps, record=record, mode=mode, rec=target.numeric)
    if cost:
        events, _ = check_inputs(program, inputs, steps)
        res = dataclasses.replace(res, cost=xylo_cost.report(program, target, res, events))
    return res


def _run(p: _Prepared, program: XyloProgram, data: np.ndarray, steps: int,
         record: Sequence[str], mode: str) -> XyloResult:
    b = data.shape[0]
    st = _State.zeros(program, b)
    rec = _Recorder(program, b, steps, record)
    x_all = np.zeros((b, steps, program.n_in), np.int64)
    t_in = min(steps, data.shape[1])
    x_all[:, :t_in] = data[:, :t_in]
    pre = None
    if mode == "batch":                     # the input products for every step at once
        pos, neg = p.w_in.sums(x_all.reshape(b * steps, -1))
        pre = (pos.reshape(b, steps, -1), neg.reshape(b, steps, -1))
    for t in range(1, steps + 1):
        x = x_all[:, t - 1]
        sums = None if pre is None else (pre[0][:, t - 1], pre[1][:, t - 1])
        _events(p, st, x, t, mode, sums)
        out = _update(p, st, t)
        rec.store(t, st, out)
    return rec.result(st.sat)
