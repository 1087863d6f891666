"""The time-batched engine: the same numbers as the step engine, fewer, larger operations.

In a program whose groups form no cycle (a group may feed itself), a group's synaptic
input over the whole run depends only on what its sources sent, so each block is
evaluated once for all steps (one matrix product over batch x time, or one convolution),
and only the neuron recurrence steps in time. Step t of a block reads its source at step
t (port data at index t-1, a group's output at step t) and its activation with delay k
reaches the target at step t + 1 + k (engine.run's buffers). A block from a group to
itself is evaluated inside that group's loop, step by step, as engine.run does it.

The neuron updates, wrap-around and saturation rules are engine.py's own functions
(``_step_group``), and activations are the same exact products (``_accumulate``), so
results, recordings, saturation counts and cost counts equal engine.run's in step mode;
tests check that against the engine and the normative kernels on random programs.
Programs with a cycle through several groups run in step mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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


def _float_product(blk: Any, k: int, w: np.ndarray, payload: int) -> Any:
    """The float dtype in which this dense matrix's product, weight exponent and sum need
    no wrap and are exact (a bound on |sum| and on it shifted below 2^31), else None."""
    bound = 256.0 * payload * max(1, w.shape[1])
    if bound * 2.0 ** max(0, blk.spec.weight_exp) >= 2**31:
        return None
    dtype = np.float32 if bound < 2**24 else np.float64
    key = 1000 + 2 * k + (dtype is np.float32)
    if key not in blk.fast:
        blk.fast[key] = np.ascontiguousarray(w.T, dtype=dtype)
    return dtype, blk.fast[key]


def _activation(blk: Any, x: np.ndarray, shapes: dict, payload: int) -> list[tuple[int, np.ndarray]]:
    """(delay, activation (B, T, n_target)) of block ``blk`` for its source's values
    ``x`` (B, T, n_source) at every step, in chunks of rows: the engine's exact products
    (``_accumulate``), or, where a bound proves it exact and free of wrap-around, one
    float product and a power-of-two scaling with floor (equal to the integer shift)."""
    from snn2hw_emulator.engine import _accumulate, is_sparse

    b, t, n = x.shape
    flat = x.reshape(b * t, n)
    parts: dict[int, list[np.ndarray]] = {}
    fast = None
    if blk.spec.kind != "conv" and not any(is_sparse(w) for _, w in blk.matrices()):
        fast = [(k, _float_product(blk, k, w, payload)) for k, w in blk.matrices()]
        fast = None if any(f is None for _, f in fast) else fast
    e = blk.spec.weight_exp
    for lo in range(0, b * t, CHUNK_ROWS):
        chunk = flat[lo:lo + CHUNK_ROWS]
        if fast is None:
            for k, act in _accumulate(blk, np.asarray(chunk, np.int64), "batch", shapes,
                                      payload):
                parts.setdefault(k, []).append(act)
            continue
        for k, (dtype, wt) in fast:
            src = chunk.astype(dtype) if blk.graded else (chunk != 0).astype(dtype)
            acc = src @ wt
            if e:
                acc *= dtype(2.0 ** e)
                if e < 0:
                    np.floor(acc, out=acc)
            parts.setdefault(k, []).append(acc)
    return [(k, np.concatenate(v).reshape(b, t, -1)) for k, v in parts.items()]


def run(program: Any, data: dict[str, np.ndarray], batch: int, steps: int,
        record: Sequence[str], cost: bool, groups: list[Any]) -> Any:
    """engine.run for a program :func:`order` accepts (inputs already checked)."""
    from snn2hw_emulator import cost as costmod
    from snn2hw_emulator import engine, lifloop
    from snn2hw_emulator.image import limits

    blocks = [engine._prepare(b) for b in program.blocks]
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    graded = set(engine.GRADED_MODELS)
    payload = {p.name: (2 ** (p.message_bits - 1) if p.message_bits else 1) for p in
               program.ports} | {g.name: 2**31 if g.model in graded else 1
                                 for g in program.groups}
    st = engine._State(program, batch)
    rec = {var: {g.name: np.zeros((batch, steps, g.size), np.int8 if var == "spikes" and
                                  g.model not in graded else np.int32)
                 for g in program.groups if var == "spikes" or
                 var in engine.STATE_VARS[g.model]}
           for var in engine.RECORDABLE if var in record or var == "spikes"}
    sat = {g.name: {"v_clip": 0, "u_wrap": 0, "first_step": 0} for g in program.groups}
    counter = costmod.Counter(program, limits(program), batch, steps, blocks) if cost else None
    sent: dict[str, np.ndarray] = {}
    for name, arr in data.items():            # port values at steps 1..steps
        x = np.zeros((batch, steps, arr.shape[2]), np.int64)
        x[:, :min(steps, arr.shape[1])] = arr[:, :steps]
        sent[name] = x
    for g in groups:
        a_all = np.zeros((batch, steps, g.size), np.int64)
        own = []
        for i, blk in enumerate(blocks):
            if blk.spec.target != g.name:
                continue
            if blk.spec.source == g.name:
                own.append(blk)
                continue
            for k, act in _activation(blk, sent[blk.spec.source], shapes,
                                      payload[blk.spec.source]):
                lag = LATENCY + k
                if lag < steps:
                    view = a_all[:, lag:]
                    np.add(view, act[:, :steps - lag], out=view, casting="unsafe")
        if not own and g.model in ("lif", "lif_reset") and lifloop.AVAILABLE:
            sent[g.name] = _lif_group(g, engine.wrap32(a_all), st, rec, sat[g.name], counter)
            continue
        ring = np.zeros((batch, steps + 64, g.size), np.int64) if own else None
        out = np.zeros((batch, steps, g.size), np.int32)    # spikes or int32 payloads
        for t in range(1, steps + 1):
            a = a_all[:, t - 1]
            if ring is not None:
                a = a + ring[:, t - 1]
            s = engine._step_group(g, st, engine.wrap32(a), t, sat[g.name], counter, rec)
            out[:, t - 1] = s
            for blk in own:
                for k, act in engine._accumulate(blk, s, "batch", shapes, payload[g.name]):
                    ring[:, t + k] += act
        sent[g.name] = out
    if counter is not None:
        for i, blk in enumerate(blocks):
            nnz = np.asarray(counter.nnz[i])           # synapses per source neuron
            dtype = np.float32 if float(nnz.sum()) < 2**24 else np.float64   # exact sums
            nz = (sent[blk.spec.source] != 0).astype(dtype)
            view = counter.counts["synops"][:, :, counter.block_core[i]]
            np.add(view, nz @ nnz.astype(dtype), out=view, casting="unsafe")
    outputs = {o.name: rec["spikes"][o.group] for o in program.outputs}
    report = counter.report() if counter is not None else None
    return engine.Result(rec["spikes"], rec.get("u", {}), rec.get("v", {}), outputs, sat,
                         report, **{var: rec.get(var, {}) for var in engine.SD_STATE})


def _lif_group(g: Any, a: np.ndarray, st: Any, rec: dict, sat: dict, counter: Any
               ) -> np.ndarray:
    """A LIF group's whole run in lifloop's compiled loop; records, saturation and cost
    counts as engine._step_group would leave them."""
    from snn2hw_emulator import lifloop

    want = "u" in rec or "v" in rec
    spikes, u, v, active, fired, (wraps, clips, first) = lifloop.run_group(
        g, a, st.bias[g.name], want)
    rec["spikes"][g.name][...] = spikes
    for var, arr in (("u", u), ("v", v)):
        if var in rec:
            rec[var][g.name][...] = arr
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
