"""The time-batched engine: the same numbers as the step engine, fewer, larger operations.

In a program whose groups form no cycle (a group may feed itself), a group's synaptic
input over the whole run depends only on what its sources sent, so each block is
evaluated once for all steps (one matrix product over batch x time, or one convolution),
and only the neuron recurrence steps in time. Step t of a block reads its source at step
t (port data at index t-1, a group's output at step t) and its activation with delay k
reaches the target at step t + 1 + k (engine.run's buffers). A block from a group to
itself is evaluated inside that group's loop, step by step, as engine.run does it.

The neuron updates, wrap-around and saturation rules are step mode's own functions
(``neurons.step_group``), and activations are the same exact products
(``synapses.accumulate``), so results, recordings, saturation counts and cost counts
equal engine.run's in step mode; tests check that against the engine and the normative
kernels on random programs. Programs with a cycle through several groups run in step mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from snn2hw_emulator import int8mm, scratch
from snn2hw_emulator.kernels import GRADED_MODELS, SD_STATE, STATE_VARS
from snn2hw_emulator.neurons import State, step_group
from snn2hw_emulator.program import is_sparse
from snn2hw_emulator.result import RECORDABLE, Result
from snn2hw_emulator.synapses import accumulate, prepared
from snn2hw_emulator.vector import wrap32

#: rows of (batch x time) per block evaluation, to bound temporary memory
CHUNK_ROWS = 1 << 14
#: steps from a source's step to its target's (delay 0): engine.run's buffers
LATENCY = 1


def order(program: Any) -> list[Any] | None:
    """The groups in an order where every group comes after the groups that feed it
    (self-feeding allowed), or None when there is a longer cycle."""
    feeds: dict[str, set[str]] = {g.name: set() for g in program.groups}
    for b in program.blocks:
        if b.source in feeds and b.source != b.target:
            feeds[b.target].add(b.source)
    done: list[Any] = []
    placed: set[str] = set()
    pending = list(program.groups)
    while pending:
        ready = [g for g in pending if feeds[g.name] <= placed]
        if not ready:
            return None
        for g in ready:
            done.append(g)
            placed.add(g.name)
        pending = [g for g in pending if g.name not in placed]
    return done


#: input density below which a dense block adds weight rows of non-zero inputs (gather)
#: instead of one float matrix product
GATHER_DENSITY = 0.2


def _bound(blk: Any, w: Any, payload: int) -> float:
    """|activation| bound of one matrix: the largest |effective weight| (the family's
    ``weight_bound``) * payload * inputs, shifted by weight_exp."""
    return _sum_bound(blk, w, payload) * 2.0 ** max(0, blk.spec.weight_exp)


def _sum_bound(blk: Any, w: Any, payload: int) -> float:
    return float(blk.arith.weight_bound) * payload * max(1, w.shape[1])


def _float_product(blk: Any, k: int, w: np.ndarray, payload: int,
                   nnz: np.ndarray | None = None) -> Any:
    """(dtype, [W.T | nnz]) in which this dense matrix's product, weight exponent and sum
    need no wrap and are exact (a bound on |sum| and on it shifted below 2^31), else None.
    With ``nnz`` (binary input) one more column holds each input's synapse count, so the
    same product counts synaptic events (exact: the counts sum below 2^24)."""
    if _bound(blk, w, payload) >= 2**31:
        return None
    dtype = np.float32 if _sum_bound(blk, w, payload) < 2**24 else np.float64   # exact
    extra = nnz is not None and float(nnz.sum()) < 2**24
    key = 1000 + 4 * k + 2 * extra + (dtype is np.float32)
    if key not in blk.fast:
        cols = [w.T] + ([nnz[:, None]] if extra else [])
        blk.fast[key] = np.ascontiguousarray(np.hstack(cols), dtype=dtype)
    return dtype, blk.fast[key]


#: multiply-adds per product from which torch's float matmul (oneDNN/MKL; float32 is
#: IEEE on CPUs, no TF32 or bf16) is used in place of numpy's BLAS where torch is
#: installed: once torch is imported, or from TORCH_IMPORT_FROM (importing it takes ~2 s)
TORCH_FROM = 5e7
TORCH_IMPORT_FROM = 2e10


def _torch(work: float) -> Any:
    import sys

    if work < TORCH_FROM or ("torch" not in sys.modules and work < TORCH_IMPORT_FROM):
        return None
    try:
        import torch
    except ImportError:                        # the torch extra is optional
        return None
    return torch


def _gather_matrix(blk: Any, k: int, w: np.ndarray) -> np.ndarray:
    key = 3000 + k
    if key not in blk.fast:
        blk.fast[key] = np.ascontiguousarray(w.T, dtype=np.int32)
    return blk.fast[key]


def _gather16(blk: Any, k: int, w: np.ndarray) -> np.ndarray | None:
    """The gather matrix as int16 where the weights fit (binary inputs' int16 sums)."""
    key = 4000 + k
    if key not in blk.fast:
        wt = _gather_matrix(blk, k, w)
        fits = wt.size == 0 or int(np.abs(wt).max()) < 2**15
        blk.fast[key] = wt.astype(np.int16) if fits else None
    return blk.fast[key]


#: input density from which binary inputs take the int8 matrix product (torch's int8
#: GEMM, AMX or VNNI where the CPU has them: 3-4x float32's rate here) rather than the
#: gather of weight rows; INT8 False: float products only
INT8_DENSITY = 0.03
INT8 = True


def _activation(blk: Any, x: np.ndarray, shapes: dict, payload: int, fuse: bool = False,
                negated: np.ndarray | None = None
                ) -> tuple[list[tuple[int, Any]], float | None, np.ndarray | None]:
    """Block ``blk`` on its source's values ``x`` (B, T, n_source) at every step:
    ([(delay, activation (B, T, n_target))], a bound on |activation| where one proves it
    wrap-free (else None: the engine's wrapped values), synaptic events per (b, t) where
    they came for free (else None)). Products: the engine's exact ones
    (``synapses.accumulate``), or, where the bound proves them exact and wrap-free, a gather of the weight rows of
    non-zero inputs (sparse inputs, compiled) or one float product and a power-of-two
    scaling with floor (equal to the integer shift)."""
    from snn2hw_emulator import lifloop

    b, t, n = x.shape
    flat = x.reshape(b * t, n)
    mats = blk.matrices()
    plain = blk.spec.kind != "conv" and not any(is_sparse(w) for _, w in mats)
    bound = max(_bound(blk, w, payload) for _, w in mats) * len(mats) if plain else None
    if bound is not None and bound >= 2**31:
        bound = None
    e = blk.spec.weight_exp
    counts = [np.asarray(w != 0, np.int64).sum(axis=0) for _, w in mats] \
        if len(mats) > 1 else [np.asarray(blk.nnz_col, np.int64)]
    work = float(flat.shape[0]) * n * mats[0][1].shape[0]
    torch = _torch(work) if bound is not None else None
    int8 = None
    if INT8 and torch is not None and not blk.graded and hasattr(torch, "_int_mm"):
        int8 = [int8mm.matrix(blk, k, w, c) for (k, w), c in zip(mats, counts)]
        int8 = int8 if all(m is not None for m in int8) else None
    density = (INT8_DENSITY if int8 is not None else GATHER_DENSITY) if not blk.graded \
        else (GATHER_DENSITY if torch is None else GATHER_DENSITY / 2)   # torch: ~2x BLAS
    if bound is not None and lifloop.ready(work) and _density(flat) < density:
        syn = np.zeros(b * t, np.int64)
        acts = []
        for (k, w), part in zip(mats, counts):
            act, count = lifloop.gather(flat, _gather_matrix(blk, k, w), e, blk.graded, part,
                                        None if blk.graded else _gather16(blk, k, w))
            acts.append((k, act.reshape(b, t, -1)))
            syn += count
        return acts, bound, syn.reshape(b, t)
    if int8 is not None and bound is not None:
        if negated is not None:                   # the source's spikes, negated (0/-1)
            neg8 = negated.reshape(b * t, n)
        else:                          # int8 inputs are 0/1 (binary ports); torch's neg
            x8 = flat if flat.dtype == np.int8 else (flat != 0).astype(np.int8)  # threads
            neg8 = scratch.take("timebatch.input", x8.shape, np.int8)
            torch.neg(torch.from_numpy(np.ascontiguousarray(x8)), out=torch.from_numpy(neg8))
        syn = np.zeros(b * t, np.int64)
        acts = []
        for (k, _), mat in zip(mats, int8):
            act, count = int8mm.product(torch, np.ascontiguousarray(neg8), mat, e,
                                       fuse and len(int8) == 1)
            acts.append((k, int8mm.Scaled(act.raw.reshape(b, t, -1), act.sign, act.shift)
                         if isinstance(act, int8mm.Scaled) else act.reshape(b, t, -1)))
            syn += count
        return acts, bound, syn.reshape(b, t)
    out: dict[int, np.ndarray] = {}
    syn_all = None if bound is None or blk.graded else np.zeros(b * t, np.int64)
    for lo in range(0, b * t, CHUNK_ROWS):
        chunk = flat[lo:lo + CHUNK_ROWS]
        rows = slice(lo, lo + chunk.shape[0])
        if bound is None:
            for k, act in accumulate(blk, np.asarray(chunk, np.int64), "batch", shapes,
                                     payload):
                out.setdefault(k, np.zeros((b * t, act.shape[1]), act.dtype))
                out[k][rows] = act
            continue
        for (k, w), c in zip(mats, counts):
            n_out = w.shape[0]
            dtype, wt = _float_product(blk, k, w, payload, None if blk.graded else c)
            src = chunk.astype(dtype) if blk.graded else (chunk != 0).astype(dtype)
            if torch is not None:
                acc = (torch.from_numpy(src) @ torch.from_numpy(wt)).numpy()
            else:
                acc = src @ wt
            if syn_all is not None:
                if wt.shape[1] > n_out:
                    syn_all[rows] += acc[:, n_out].astype(np.int64)
                else:
                    syn_all = None
            act = acc[:, :n_out]
            if e:
                act *= dtype(2.0 ** e)
                if e < 0:
                    np.floor(act, out=act)
            dest = out.setdefault(k, np.zeros((b * t, n_out), np.int32))
            dest[rows] = act
    syn_bt = None if syn_all is None else syn_all.reshape(b, t)
    return [(k, v.reshape(b, t, -1)) for k, v in sorted(out.items())], bound, syn_bt


def _density(flat: np.ndarray) -> float:
    """The fraction of non-zero inputs, from every 8th row of a large input (it only
    chooses between exact products)."""
    part = flat[::8] if flat.shape[0] >= 4096 else flat
    return np.count_nonzero(part) / max(1, part.size)


def run(program: Any, data: dict[str, np.ndarray], batch: int, steps: int,
        record: Sequence[str], cost: bool, groups: list[Any]) -> Any:
    """engine.run for a program :func:`order` accepts (inputs already checked)."""
    from snn2hw_emulator import cost as costmod
    from snn2hw_emulator import lifloop
    from snn2hw_emulator.image import target_of

    target = target_of(program)
    blocks = prepared(program)
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    graded = set(GRADED_MODELS)
    payload = {p.name: (2 ** (p.message_bits - 1) if p.message_bits else 1) for p in
               program.ports} | {g.name: 2**31 if g.model in graded else 1
                                 for g in program.groups}
    st = State(program, batch, target.numeric)
    rec = {var: {g.name: np.zeros((batch, steps, g.size), np.int8 if var == "spikes" and
                                  g.model not in graded else np.int32)
                 for g in program.groups if var == "spikes" or
                 var in STATE_VARS[g.model]}
           for var in RECORDABLE if var in record or var == "spikes"}
    sat = {g.name: {"v_clip": 0, "u_wrap": 0, "first_step": 0} for g in program.groups}
    counter = costmod.Counter(program, target, batch, steps, blocks) if cost else None
    sent: dict[str, np.ndarray] = {}
    for name, arr in data.items():            # port values at steps 1..steps
        if arr.shape[1] >= steps:
            sent[name] = arr[:, :steps]
        else:
            x = np.zeros((batch, steps, arr.shape[2]), arr.dtype)
            x[:, :arr.shape[1]] = arr
            sent[name] = x
    synops: dict[int, np.ndarray] = {}
    negated: dict[str, np.ndarray] = {}     # LIF spikes as 0/-1 for the int8 products
    for g in groups:
        into = [(i, blk) for i, blk in enumerate(blocks) if blk.spec.target == g.name]
        own = [blk for _, blk in into if blk.spec.source == g.name]
        results = []
        fast = not own and g.model in ("lif", "lif_reset") and \
            lifloop.ready(batch * steps * g.size)
        for i, blk in into:
            if blk.spec.source != g.name:        # fuse: the LIF loop scales what it reads
                acts, bound, syn = _activation(blk, sent[blk.spec.source], shapes,
                                               payload[blk.spec.source], fast and len(into) == 1,
                                               negated.get(blk.spec.source))
                results.append((acts, bound))
                if syn is not None:
                    synops[i] = syn
        single = [acts for acts, bound in results if bound is not None and bound < 2**31]
        if fast and len(results) == 1 and len(single) == 1 and len(single[0]) == 1:
            (k, act), = single[0]                 # one block, one delay: no sum to form,
            sent[g.name] = _lif_group(g, act, st, rec, sat[g.name], counter,  # read it
                                      LATENCY + k, _negate(g, blocks, negated))  # k+1 late
            continue
        a_all = _summed(results, batch, steps, g.size)
        if fast:
            sent[g.name] = _lif_group(g, a_all, st, rec, sat[g.name], counter, 0,
                                      _negate(g, blocks, negated))
            continue
        depth = max((blk.depth for blk in own), default=1)      # longest delay + 1
        ring = np.zeros((batch, steps + depth + 1, g.size), np.int64) if own else None
        out = np.zeros((batch, steps, g.size), np.int32)    # spikes or int32 payloads
        for t in range(1, steps + 1):
            a = a_all[:, t - 1]
            if ring is not None:
                a = a + ring[:, t - 1]
            s = step_group(g, st, wrap32(a.astype(np.int64)), t, sat[g.name],
                                   counter, rec)
            out[:, t - 1] = s
            for blk in own:
                for k, act in accumulate(blk, s, "batch", shapes, payload[g.name]):
                    ring[:, t + k] += act
        sent[g.name] = out
    if counter is not None:
        for i, blk in enumerate(blocks):
            if i in synops:
                counter.counts["synops"][:, :, counter.block_core[i]] += synops[i]
                continue
            nnz = np.asarray(counter.nnz[i])           # synapses per source neuron
            dtype = np.float32 if float(nnz.sum()) < 2**24 else np.float64   # exact sums
            nz = (sent[blk.spec.source] != 0).astype(dtype)
            view = counter.counts["synops"][:, :, counter.block_core[i]]
            np.add(view, nz @ nnz.astype(dtype), out=view, casting="unsafe")
    outputs = {o.name: rec["spikes"][o.group] for o in program.outputs}
    report = counter.report() if counter is not None else None
    return Result(rec["spikes"], rec.get("u", {}), rec.get("v", {}), outputs, sat,
                  report, **{var: rec.get(var, {}) for var in SD_STATE})


def _summed(results: list, batch: int, steps: int, size: int) -> np.ndarray:
    """A group's input at every step (B, T, n): its blocks' activations, each LATENCY +
    delay steps late, summed with 32-bit wrap-around (int32 where the bounds exclude it)."""
    total = sum(bound for _, bound in results) if all(
        bound is not None for _, bound in results) else None
    small = total is not None and total < 2**31          # no wrap-around possible
    a_all = np.zeros((batch, steps, size), np.int32 if small else np.int64)
    for acts, _ in results:
        for k, act in acts:
            lag = LATENCY + k
            if lag < steps:
                view = a_all[:, lag:]
                np.add(view, act[:, :steps - lag], out=view, casting="unsafe")
    return a_all if small else wrap32(a_all)


def _negate(g: Any, blocks: list, negated: dict) -> dict | None:
    """Where group g's spikes go (negated) if an int8 product will read them: ``negated``,
    when torch is loaded and g feeds a binary block; else None."""
    import sys

    feeds = any(b.spec.source == g.name and not b.graded and b.spec.kind != "conv"
                for b in blocks)
    return negated if INT8 and feeds and "torch" in sys.modules else None


def _lif_group(g: Any, a: np.ndarray, st: Any, rec: dict, sat: dict, counter: Any,
               lag: int = 0, negated: dict | None = None) -> np.ndarray:
    """A LIF group's whole run in lifloop's compiled loop (input at step t: a[:, t - lag],
    none before); records, saturation and cost counts as neurons.step_group would leave
    them."""
    from snn2hw_emulator import lifloop

    want = "u" in rec or "v" in rec
    a, scale = (a.raw, (a.sign, a.shift)) if isinstance(a, int8mm.Scaled) else (a, (1, 0))
    neg = None
    if negated is not None:
        neg = negated[g.name] = scratch.take(("timebatch.negated", g.name),
                                             a.shape[:2] + (g.size,), np.int8)
    spikes, u, v, active, fired, (wraps, clips, first) = lifloop.run_group(
        g, a, st.bias[g.name], want, st.arith, lag, scale, neg)
    rec["spikes"][g.name] = spikes                # the loop's own arrays: no copies
    for var, arr in (("u", u), ("v", v)):
        if var in rec:
            rec[var][g.name] = arr
    sat["u_wrap"] += wraps
    sat["v_clip"] += clips
    if first and not sat["first_step"]:
        sat["first_step"] = first
    if counter is not None:
        c = counter.group_core[g.name]
        counts = counter.counts
        counts["active"][:, :, c] += active
        counts["inactive"][:, :, c] += g.size - active
        counts["spikes"][:, :, c] += fired
        counts["hops"][:, :, c] += fired * counter.hops[g.name]
        counts["chip_hops"][:, :, c] += fired * counter.chip_hops[g.name]
        counts["payload_bits"][:, :, c] += fired * counter.width[g.name]
    return spikes
