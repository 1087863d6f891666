"""Compiled loops of the time-batched engine (numba, the ``fast`` extra).

* :func:`run_group`: a whole run of one LIF group, the same arithmetic as
  ``engine.lif_update`` (and so kernels.lif_step), step by step for every neuron of every
  sample, with the group's synaptic input for all steps given (LIF groups that do not
  feed themselves).
* :func:`gather`: a dense block's activations for many (sample, step) rows at once,
  adding only the weight rows of inputs that are non-zero (spikes are mostly zeros), in
  int32 where the caller's bound proves the sum and its weight-exponent shift fit; for
  binary inputs in int16 per row where the row's count of active inputs times the
  largest |weight| stays below 2^15 (twice the adds per vector instruction).

Without numba the time-batched engine uses numpy (``engine.lif_update``, BLAS).
Samples (rows) run in parallel threads; every thread writes only its own rows, and one
threaded loop runs at a time per process (numba's default threading layer is not
re-entrant: a Dask worker with several threads calls in from each).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading

import numpy as np

prange = range                        # numba compiles it as a parallel range


def _wrap32(x):
    return ((x + 2147483648) & 4294967295) - 2147483648


def _decay(x, keep, bits):
    p = x * keep
    return -((-p) >> bits) if p < 0 else p >> bits


def _run(a, lag, sign, shift, u0, v0, bias, keep_u, keep_v, vth, reset_interval,
         reset_offset, widths, rec_u, rec_v, rec_s, neg_s, n_active, n_spikes, counts):
    """a (B*T, >= n) input rows (wrapped, or within int32 after scaling; step t of sample
    b is row b*T + t, its first n columns) scaled as floor_shift(sign * a, shift) and read
    ``lag`` steps late (step t gets row t - lag, zero before); neg_s (when it has T
    columns) gets the spikes negated (0/-1: what timebatch's int8 product takes);
    writes spikes, u, v (when rec_u/rec_v have T columns), per (b, t) active and spiking
    counts, and per sample counts[b] = [u wraps, v clips, first step with either (0:
    none)]; ``widths`` = (decay_bits, act_shift, u's wrap point state_half, v's clip
    v_max) of the target's family record."""
    batch, steps, n = rec_s.shape
    decay_bits, act_shift, half, v_max = widths
    thr = vth << act_shift
    record = rec_u.shape[1] == steps
    negate = neg_s.shape[1] == steps
    for b in prange(batch):
        u_state = u0.copy()
        v_state = v0.copy()
        first = 0
        wraps = 0
        clips = 0
        for t in range(steps):
            if reset_interval > 0 and (t + 1) % reset_interval == reset_offset % reset_interval:
                reset = 0
            else:
                reset = 1
            active = 0
            fired = 0
            events = 0
            ta = t - lag
            on = ta >= 0
            ta = max(ta, 0)
            for i in range(n):                 # branch-free, so that it vectorises
                u = u_state[i]
                v = v_state[i]
                x = _shift(np.int64(a[b * steps + ta, i]) * sign, shift) * on
                active += (x != 0) | (u != 0) | (v != 0)      # before a reset, as the engine
                u = u * reset
                v = v * reset
                u = _wrap32(_decay(u, keep_u, decay_bits) + _wrap32(x << act_shift))
                hi = u > half
                lo = u <= -half
                u = u - (2 * half) * hi + (2 * half) * lo
                v = _wrap32(_decay(v, keep_v, decay_bits) + u + bias[i])
                over = v > v_max
                under = v < -v_max
                v = min(max(v, -v_max), v_max)
                spike = v > thr
                v = v * (1 - spike)
                wraps += hi + lo
                clips += over + under
                events += hi + lo + over + under
                fired += spike
                rec_s[b, t, i] = spike
                if negate:
                    neg_s[b, t, i] = -spike
                if record:
                    rec_u[b, t, i] = u
                    rec_v[b, t, i] = v
                u_state[i] = u
                v_state[i] = v
            n_active[b, t] = active
            n_spikes[b, t] = fired
            if events and first == 0:
                first = t + 1
        counts[b, 0] = wraps
        counts[b, 1] = clips
        counts[b, 2] = first


def _gather(x, wt, exp, graded, nnz, out, syn):
    """out[r] = (sum over j with x[r, j] != 0 of (x[r, j] if graded else 1) * wt[j])
    shifted by ``exp`` (floor); syn[r] = sum of nnz[j] over those j."""
    rows, n_in = x.shape
    n_out = wt.shape[1]
    for r in prange(rows):
        acc = out[r]
        count = 0
        for j in range(n_in):
            v = x[r, j]
            if v != 0:
                count += nnz[j]
                if graded:
                    m = np.int32(v)
                    for k in range(n_out):
                        acc[k] += m * wt[j, k]
                else:
                    for k in range(n_out):
                        acc[k] += wt[j, k]
        if exp > 0:
            for k in range(n_out):
                acc[k] = acc[k] << exp
        elif exp < 0:
            for k in range(n_out):
                acc[k] = acc[k] >> -exp
        syn[r] = count


def _gather_binary(x, wt16, wt32, exp, nnz, wmax, out, syn):
    """_gather for binary inputs: out[r] = (sum of the weight rows wt[j] of inputs j with
    x[r, j] != 0) shifted by ``exp``. A row with c active inputs sums at most c * wmax
    in magnitude: below 2^15 the sum is exact in int16 (16 lanes per vector: twice
    int32's adds per instruction), else in int32."""
    rows, n_in = x.shape
    n_out = wt32.shape[1]
    for r in prange(rows):
        idx = np.empty(n_in, np.int64)
        c = 0
        count = 0
        for j in range(n_in):
            if x[r, j] != 0:
                idx[c] = j
                c += 1
                count += nnz[j]
        syn[r] = count
        o = out[r]
        if c * wmax < 32768:
            acc16 = np.zeros(n_out, np.int16)
            for q in range(c):
                w16 = wt16[idx[q]]
                for k in range(n_out):
                    acc16[k] += w16[k]
            for k in range(n_out):
                o[k] = _shift(np.int32(acc16[k]), exp)
        else:
            acc32 = np.zeros(n_out, np.int32)
            for q in range(c):
                w32 = wt32[idx[q]]
                for k in range(n_out):
                    acc32[k] += w32[k]
            for k in range(n_out):
                o[k] = _shift(acc32[k], exp)


def _negated_shift(acc, n, exp, out):
    """out = floor_shift(-acc[:, :n], exp), row by row (timebatch's int8 product
    epilogue: one pass over the product instead of two)."""
    for r in prange(acc.shape[0]):
        src = acc[r]
        dst = out[r]
        for k in range(n):
            dst[k] = _shift(-src[k], exp)


def _shift(v, exp):
    return v << exp if exp >= 0 else v >> -exp


#: numba is optional (`pip install snn2hw[fast]`); importing it and loading the compiled
#: loops costs about a second, so a process imports it only for work of at least
#: LOAD_FROM neuron updates or multiply-adds (or once something else has imported it)
AVAILABLE = importlib.util.find_spec("numba") is not None
LOAD_FROM = 5e6
_JIT: dict = {}

#: samples (LIF) and rows (gather) from which the threaded loops are used
THREADS_FROM = {"samples": 8, "rows": 4096}
#: one threaded loop at a time per process: numba's default (workqueue) threading layer
#: must not be entered from two threads at once (a Dask worker with several threads)
_LOCK = threading.Lock()
_NO_LOCK = contextlib.nullcontext()


def ready(work: float) -> bool:
    """Whether to run ``work`` (neuron updates, multiply-adds) in the compiled loops."""
    return AVAILABLE and (bool(_JIT) or "numba" in sys.modules or work >= LOAD_FROM)


def _jit() -> dict:
    if not _JIT:
        import numba

        glb = globals()
        glb["prange"] = numba.prange
        glb["_wrap32"] = numba.njit(cache=True, inline="always")(_wrap32)
        glb["_decay"] = numba.njit(cache=True, inline="always")(_decay)
        glb["_shift"] = numba.njit(cache=True, inline="always")(_shift)
        for name, fn in (("run", _run), ("gather", _gather), ("binary", _gather_binary),
                         ("negated_shift", _negated_shift)):
            # threads pay off on many samples; a few run faster in one (no thread start-up)
            _JIT[name] = numba.njit(cache=True, nogil=True)(fn)
            _JIT[name + "_threads"] = numba.njit(cache=True, nogil=True, parallel=True)(
                _renamed(fn, "_threads"))
    return _JIT


def _renamed(fn, suffix: str):
    """A copy of ``fn`` under another name: numba's on-disk cache is keyed by the
    function's name and line, not by its compile flags, so the parallel build of the
    same function would load the serial one from the cache (and run on one thread)."""
    import types

    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    return copy


def run_group(g, a: np.ndarray, bias: np.ndarray, want_uv: bool, arith, lag: int = 0,
              scale: tuple[int, int] = (1, 0), negated: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray,
                         np.ndarray, tuple[int, int, int]]:
    """(spikes int8, u, v int32 or None, active and spiking counts per (b, t),
    (u wraps, v clips, first step)) of LIF group ``g`` over input ``a`` (B, T, n), read
    ``lag`` steps late and scaled: floor_shift(sign * a, shift) for ``scale`` (sign,
    shift); ``negated`` (B, T, n) int8, if given, gets the spikes negated; in the widths of
    ``arith`` (the target's family record)."""
    batch, steps, n = a.shape
    rows = _rows(a)
    spikes = np.zeros((batch, steps, n), np.int8)
    shape = (batch, steps, n) if want_uv else (batch, 0, n)
    u, v = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    active = np.zeros((batch, steps), np.int64)
    fired = np.zeros((batch, steps), np.int64)
    counts = np.zeros((batch, 3), np.int64)
    reset = (int(g.reset_interval), int(g.reset_offset)) if g.model == "lif_reset" else (0, 0)
    threads = batch >= THREADS_FROM["samples"]
    loop = _jit()["run_threads" if threads else "run"]
    with _LOCK if threads else _NO_LOCK:
        loop(rows, int(lag), int(scale[0]), int(scale[1]),
             np.asarray(g.u0, np.int64),
             np.asarray(g.v0, np.int64), np.ascontiguousarray(bias, np.int64),
             arith.decay_one - (int(g.du) + arith.du_offset), arith.decay_one - int(g.dv),
             int(g.vth), reset[0], reset[1],
             (arith.decay_bits, arith.act_shift, arith.state_half, arith.v_max),
             u, v, spikes, np.zeros((batch, 0, n), np.int8) if negated is None else negated,
             active, fired, counts)
    firsts = counts[:, 2][counts[:, 2] > 0]
    return (spikes, u if want_uv else None, v if want_uv else None, active, fired,
            (int(counts[:, 0].sum()), int(counts[:, 1].sum()),
             int(firsts.min()) if firsts.size else 0))


def negated_shift(acc: np.ndarray, n: int, exp: int) -> np.ndarray:
    """floor_shift(-acc[:, :n], exp) as a new C-contiguous int32 array (acc: int32 rows,
    the negation and shift cannot overflow: the caller's bound)."""
    out = np.empty((acc.shape[0], n), np.int32)
    threads = "_threads" if acc.shape[0] >= THREADS_FROM["rows"] else ""
    with _LOCK if threads else _NO_LOCK:
        _jit()["negated_shift" + threads](acc, int(n), int(exp), out)
    return out


def _rows(a: np.ndarray) -> np.ndarray:
    """(B, T, n) as C-contiguous (B*T, W >= n) rows without a copy where ``a`` is the
    first n columns of such rows (a product's output with more columns), else a copy."""
    b, t, n = a.shape
    item = a.itemsize
    pitch = a.strides[1]
    if a.strides[2] == item and a.strides[0] == t * pitch and pitch % item == 0 and \
            pitch >= n * item:
        full = np.lib.stride_tricks.as_strided(a, (b * t, pitch // item), (pitch, item),
                                               writeable=False)
        if full.flags.c_contiguous:
            return full
    return np.ascontiguousarray(a).reshape(b * t, n)


def gather(x: np.ndarray, wt: np.ndarray, exp: int, graded: bool, nnz: np.ndarray,
           wt16: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(activations int32 (R, n_out), synaptic events per row) of the effective weights
    ``wt`` (n_in, n_out) int32 for inputs ``x`` (R, n_in); the caller guarantees that
    |sum| << max(exp, 0) < 2^31 (no wrap-around). ``wt16``: the same weights as int16
    (they fit), for binary inputs' int16 sums."""
    out = np.empty((x.shape[0], wt.shape[1]), np.int32)
    syn = np.zeros(x.shape[0], np.int64)
    threads = "_threads" if x.shape[0] >= THREADS_FROM["rows"] else ""
    x = np.ascontiguousarray(x)
    nnz = np.ascontiguousarray(nnz, np.int64)
    with _LOCK if threads else _NO_LOCK:
        if wt16 is not None and not graded:
            wmax = int(np.abs(wt).max(initial=0))
            _jit()["binary" + threads](x, wt16, wt, int(exp), nnz, wmax, out, syn)
        else:
            out[...] = 0
            _jit()["gather" + threads](x, wt, int(exp), bool(graded), nnz, out, syn)
    return out, syn
