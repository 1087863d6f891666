"""The float reference's arithmetic, one function per primitive (the ``forward`` and
``integrate`` columns of :mod:`snn2hw.primitives`); :mod:`snn2hw.reference` runs them.

Stateless nodes: ``forward(node, x) -> y`` on a batch ``x`` (B, *input shape). Neurons:
``integrate(node, x, state, opt) -> v``, one step of the membrane (and, for current-based
neurons, the synaptic current ``state["i"]``) before threshold and reset
(specs/nir_semantics.md §1.5): IF/I ``v += r*I``; LI/LIF ``v += dt/tau*(v_leak - v +
r*I)`` (``exact``: zero-order hold); CubaLI/CubaLIF ``i += dt/tau_syn*(-i + w_in*I)``, then
v as LI on the new ``i`` (``cuba_voltage_uses="old"``: the previous one). ``opt`` is the
reference's resolved options (dt, integrator, cuba_voltage_uses).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def param(node: Any, name: str, dtype: Any, default: float = 0.0) -> np.ndarray:
    """A node parameter as an array (``default`` where the node has none)."""
    value = getattr(node, name, None)
    return np.asarray(default if value is None else value, dtype=dtype)


def as_tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in np.broadcast_to(np.asarray(value, dtype=int).ravel(), (n,)))


def pad_amounts(node: Any, kernel: tuple[int, ...], dil: tuple[int, ...]
                ) -> list[tuple[int, int]]:
    if isinstance(node.padding, str):
        if node.padding == "valid":
            return [(0, 0)] * len(kernel)
        totals = [d * (k - 1) for k, d in zip(kernel, dil)]   # 'same' as PyTorch pads it
        return [(t // 2, t - t // 2) for t in totals]
    pads = np.broadcast_to(np.asarray(node.padding, dtype=int).ravel(), (len(kernel),))
    return [(int(p), int(p)) for p in pads]


# --------------------------------------------------------------------------- stateless


def linear(node: Any, x: np.ndarray) -> np.ndarray:
    return x @ np.asarray(node.weight, dtype=x.dtype).T


def affine(node: Any, x: np.ndarray) -> np.ndarray:
    return linear(node, x) + np.asarray(node.bias, dtype=x.dtype)


def scale(node: Any, x: np.ndarray) -> np.ndarray:
    return x * np.asarray(node.scale, dtype=x.dtype)


def threshold(node: Any, x: np.ndarray) -> np.ndarray:
    return (x > np.asarray(node.threshold, dtype=x.dtype)).astype(x.dtype)


def identity(node: Any, x: np.ndarray) -> np.ndarray:
    return x


def conv2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pads: list[tuple[int, int]],
           dil: tuple[int, int], groups: int) -> np.ndarray:
    """PyTorch-style cross-correlation: x (B, C, H, W), w (O, C/groups, kH, kW)."""
    b = x.shape[0]
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    ho = (xp.shape[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((b, groups, o // groups, ho, wo), dtype=x.dtype)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dil[0]: i * dil[0] + stride[0] * (ho - 1) + 1: stride[0],
                       j * dil[1]: j * dil[1] + stride[1] * (wo - 1) + 1: stride[1]]
            patch = patch.reshape(b, groups, cg, ho, wo)
            out += np.einsum("bgchw,goc->bgohw", patch, wg[:, :, :, i, j])
    return out.reshape(b, o, ho, wo)


def conv(node: Any, x: np.ndarray) -> np.ndarray:
    """Conv1d and Conv2d (a 1-D convolution as a 2-D one of height 1)."""
    w = np.asarray(node.weight, dtype=x.dtype)
    one_d = w.ndim == 3
    if one_d:
        x, w = x[:, :, None, :], w[:, :, None, :]
    kernel = tuple(w.shape[2:])
    stride = (1, *as_tuple(node.stride, 1)) if one_d else as_tuple(node.stride, 2)
    dil = (1, *as_tuple(node.dilation, 1)) if one_d else as_tuple(node.dilation, 2)
    pads = pad_amounts(node, kernel[1:] if one_d else kernel, dil[1:] if one_d else dil)
    pads = [(0, 0), *pads] if one_d else pads
    y = conv2d(x, w, stride, pads, dil, int(node.groups))
    y = y + np.asarray(node.bias, dtype=x.dtype).reshape(-1, 1, 1)
    return y[:, :, 0, :] if one_d else y


def sum_pool(node: Any, x: np.ndarray) -> np.ndarray:
    k = as_tuple(node.kernel_size, 2)
    stride = as_tuple(node.stride, 2)
    pads = [(p, p) for p in as_tuple(node.padding, 2)]
    c = x.shape[1]
    w = np.ones((c, 1, *k), dtype=x.dtype)
    return conv2d(x, w, stride, pads, (1, 1), c)


def avg_pool(node: Any, x: np.ndarray) -> np.ndarray:
    k = as_tuple(node.kernel_size, 2)
    return sum_pool(node, x) / (k[0] * k[1])


def flatten(node: Any, x: np.ndarray) -> np.ndarray:
    dims = x.shape[1:]
    start = int(node.start_dim) % len(dims)
    end = int(node.end_dim) % len(dims)
    shape = dims[:start] + (int(np.prod(dims[start:end + 1])),) + dims[end + 1:]
    return x.reshape((x.shape[0], *shape))


# --------------------------------------------------------------------------- neurons


def leak(v: np.ndarray, drive: np.ndarray, tau: np.ndarray, opt: Any) -> np.ndarray:
    """One step of tau dv/dt = drive - v (drive = v_leak + r*I)."""
    if opt.integrator == "exact":
        return drive + (v - drive) * np.exp(-opt.dt / tau)
    return v + (opt.dt / tau) * (drive - v)


def integrate_perfect(node: Any, x: np.ndarray, state: dict[str, np.ndarray], opt: Any
                      ) -> np.ndarray:
    """IF and I: ``v += r*I``."""
    return state["v"] + param(node, "r", x.dtype) * x


def integrate_leaky(node: Any, x: np.ndarray, state: dict[str, np.ndarray], opt: Any
                    ) -> np.ndarray:
    """LI and LIF."""
    dt = x.dtype
    return leak(state["v"], param(node, "v_leak", dt) + param(node, "r", dt) * x,
                param(node, "tau", dt), opt)


def integrate_cuba(node: Any, x: np.ndarray, state: dict[str, np.ndarray], opt: Any
                   ) -> np.ndarray:
    """CubaLI and CubaLIF: the current first, then v (updates ``state["i"]``)."""
    dt = x.dtype
    i_old = state["i"]
    i_new = leak(i_old, param(node, "w_in", dt, 1.0) * x, param(node, "tau_syn", dt), opt)
    i_used = i_new if opt.cuba_voltage_uses == "new" else i_old
    v = leak(state["v"], param(node, "v_leak", dt) + param(node, "r", dt) * i_used,
             param(node, "tau_mem", dt), opt)
    state["i"] = i_new
    return v


__all__ = ["affine", "as_tuple", "avg_pool", "conv", "conv2d", "flatten", "identity",
           "integrate_cuba", "integrate_leaky", "integrate_perfect", "leak", "linear",
           "pad_amounts", "param", "scale", "sum_pool", "threshold"]
