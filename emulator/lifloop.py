"""A whole run of one LIF group in one compiled loop (numba, the ``fast`` extra).

The same arithmetic as ``engine.lif_update`` (and so kernels.lif_step), step by step for
every neuron of every sample, with the group's synaptic input for all steps given: the
time-batched engine (timebatch.py) uses it for LIF groups that do not feed themselves.
Without numba the time-batched engine steps the group with ``engine.lif_update``.
"""

from __future__ import annotations

import numpy as np

try:                                  # optional: `pip install snn2hw[fast]`
    import numba
except ImportError:                   # pragma: no cover - exercised where numba is absent
    numba = None

HALF = 2 ** 23                        # u wraps into (-2^23, 2^23]
V_MAX = 2 ** 23 - 1


def _wrap32(x):
    return ((x + 2147483648) & 4294967295) - 2147483648


def _decay(x, keep):
    p = x * keep
    return -((-p) >> 12) if p < 0 else p >> 12


def _run(a, u0, v0, bias, keep_u, keep_v, vth, reset_interval, reset_offset,
         rec_u, rec_v, rec_s, n_active, n_spikes, counts):
    """a (B, T, n) int64 input (already wrapped); writes spikes, u, v (when rec_u/rec_v
    have T columns), per (b, t) active and spiking counts, and counts = [u wraps, v clips,
    first step with either (0: none)]."""
    batch, steps, n = a.shape
    thr = vth << 6
    record = rec_u.shape[1] == steps
    first = 0
    wraps = 0
    clips = 0
    for b in range(batch):
        u_state = u0.copy()
        v_state = v0.copy()
        for t in range(steps):
            due = reset_interval > 0 and (t + 1) % reset_interval == reset_offset % reset_interval
            for i in range(n):
                u = u_state[i]
                v = v_state[i]
                x = a[b, t, i]
                if x != 0 or u != 0 or v != 0:        # before a reset, as the engine counts
                    n_active[b, t] += 1
                if due:
                    u = 0
                    v = 0
                u = _wrap32(_decay(u, keep_u) + _wrap32(x << 6))
                event = False
                if u > HALF:
                    u -= 2 * HALF
                    wraps += 1
                    event = True
                elif u <= -HALF:
                    u += 2 * HALF
                    wraps += 1
                    event = True
                v = _wrap32(_decay(v, keep_v) + u + bias[i])
                if v > V_MAX:
                    v = V_MAX
                    clips += 1
                    event = True
                elif v < -V_MAX:
                    v = -V_MAX
                    clips += 1
                    event = True
                if event and (first == 0 or t + 1 < first):
                    first = t + 1
                if v > thr:
                    v = 0
                    rec_s[b, t, i] = 1
                    n_spikes[b, t] += 1
                if record:
                    rec_u[b, t, i] = u
                    rec_v[b, t, i] = v
                u_state[i] = u
                v_state[i] = v
    counts[0] = wraps
    counts[1] = clips
    counts[2] = first


if numba is not None:
    _wrap32 = numba.njit(cache=True, inline="always")(_wrap32)
    _decay = numba.njit(cache=True, inline="always")(_decay)
    _run = numba.njit(cache=True, nogil=True)(_run)

AVAILABLE = numba is not None


def run_group(g, a: np.ndarray, bias: np.ndarray, want_uv: bool
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray,
                         np.ndarray, tuple[int, int, int]]:
    """(spikes int8, u, v int32 or None, active and spiking counts per (b, t),
    (u wraps, v clips, first step)) of LIF group ``g`` over input ``a`` (B, T, n)."""
    batch, steps, n = a.shape
    spikes = np.zeros((batch, steps, n), np.int8)
    shape = (batch, steps, n) if want_uv else (batch, 0, n)
    u, v = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    active = np.zeros((batch, steps), np.int64)
    fired = np.zeros((batch, steps), np.int64)
    counts = np.zeros(3, np.int64)
    reset = (int(g.reset_interval), int(g.reset_offset)) if g.model == "lif_reset" else (0, 0)
    _run(np.ascontiguousarray(a, np.int64), np.asarray(g.u0, np.int64),
         np.asarray(g.v0, np.int64), np.ascontiguousarray(bias, np.int64),
         4096 - (int(g.du) + 1), 4096 - int(g.dv), int(g.vth), reset[0], reset[1],
         u, v, spikes, active, fired, counts)
    return (spikes, u if want_uv else None, v if want_uv else None, active, fired,
            (int(counts[0]), int(counts[1]), int(counts[2])))
