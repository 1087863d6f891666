"""Unroll a kept convolution that does not fit a core into a sparse block, exactly.

A kept convolution is one shared kernel on one core, so the partitioner keeps its target
group whole, and its source group whole too (the kernel reads the whole input map). When
such a group exceeds a core's limits (neurons, synaptic memory, fan-in or fan-out axons;
counted by the partitioner itself), every kept convolution into and out of it becomes a
csr block of the same synapses, which the partitioner can cut into spatial tiles.

The integers stay those the convolution applies. Lava's Conv uses its weights as they
are (no clip, no truncation, no exponent); a Dense/Sparse block clips and truncates its
full-scale weights by sign mode and ``num_weight_bits`` and shifts the sum by
``weight_exp``. So the non-zero kernel values w become full-scale weights by netx's
``optimize_weight_bits`` (full = w << b, weight_exp = -b), and the pass checks that the
effective weights the emulator computes from them equal w << b exactly, or refuses
naming the layer. The sums are equal too while a convolution's sum stays inside its
``conv_bits`` register (24 bits in Lava: Conv wraps there; Sparse sums in int32 before
the exponent): the pass
bounds the worst case per neuron from the kernel and the input's payload width, and
warns with the numbers where graded input could go beyond it (binary spikes and the
8-bit kernels of published networks stay far inside).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import DesignRuleError
from snn2hw.passes import partition
from snn2hw.passes.hwmodel import HwBlock, HwNet
from snn2hw.passes.storage import storage
from snn2hw.targets import Target


def unroll_oversized_convs(net: HwNet, target: Target,
                           message_bits: Mapping[str, int] | None = None) -> HwNet:
    """``net`` with every kept convolution into or out of a group that exceeds a core
    unrolled to an exact csr block; ``net.report["unrolled"]`` says which and why
    (block name -> {"population", "reason"}).
    ``message_bits``: payload width per source (default ``net.report["message_bits"]``,
    else the block's own ``num_message_bits``; 0 = binary spikes)."""
    return unroll_and_plan(net, target, message_bits)[0]


def unroll_and_plan(net: HwNet, target: Target,
                    message_bits: Mapping[str, int] | None = None
                    ) -> tuple[HwNet, partition.Partitioner]:
    """:func:`unroll_oversized_convs`, and the partitioner that planned the result (its
    plans are reused by ``Partitioner.run``)."""
    bits = dict(net.report.get("message_bits", {}) if message_bits is None else message_bits)
    reasons: dict[str, dict[str, str]] = dict(net.report.get("unrolled", {}))
    while True:                    # each round unrolls at least one convolution
        planner = partition.Partitioner(net, target, storage)
        over = planner.kept_whole_over_limits()
        todo = {}
        for b in net.blocks:
            if b.kind != "conv":
                continue
            sources = [g.name for g in net.groups_of(b.source)]
            why = over.get(b.target) or next((over[s] for s in sources if s in over), None)
            if why is not None:
                todo[b.name] = why
        if not todo:
            break
        blocks = []
        for b in net.blocks:
            if b.name in todo:
                limit, measured, most = todo[b.name]
                who = "it" if b.target in over else f"its source {b.source}"
                reasons[b.name] = {"population": net.group(b.target).population,
                                   "reason": f"conv unrolled to sparse: {who} exceeds a core "
                                             f"({limit} {measured:g} > {most:g})"}
                b = unroll_block(net, b, bits.get(b.source, getattr(b, "num_message_bits", 0)),
                                 target.numeric)
            blocks.append(b)
        spatial = dict(net.spatial)
        for b in blocks:
            if b.name in todo:
                for g in [net.group(b.target), *net.groups_of(b.source)]:
                    if len(g.shape) == 3:
                        spatial.setdefault(g.population, tuple(reversed(g.shape)))
        net = net.with_(blocks=tuple(blocks), spatial=spatial)
    if reasons:
        net = net.with_(report={**net.report, "unrolled": reasons})
        planner.net = net                          # the same net, with the report
    return net, planner


def conv_matrix(b: HwBlock, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int]
                ) -> sp.csr_matrix:
    """The convolution as a csr matrix (n_out, n_in) over the hardware (W, H, C) C-order
    positions of target and source: Lava's true convolution (kernel flipped), the same
    sums as ``snn2hw_emulator.kernels.conv_activation``. Zero taps are no synapse."""
    c = b.conv or {}
    (sx, sy), (px, py), (dx, dy) = c["stride"], c["padding"], c["dilation"]
    groups = int(c["groups"])
    w = np.asarray(b.weights, dtype=np.int64)          # (C_out, Kw, Kh, C_in/groups)
    xin, yin, cin = in_shape
    xo, yo, co = out_shape
    kw, kh, cg = w.shape[1], w.shape[2], w.shape[3]
    og = co // groups
    x, y, k, ch = np.meshgrid(np.arange(xo), np.arange(yo), np.arange(co), np.arange(cg),
                              indexing="ij")
    x, y, k, ch = (a.ravel() for a in (x, y, k, ch))
    rows_all, cols_all, vals_all = [], [], []
    for i in range(kw):
        for j in range(kh):
            xi, yj = x * sx + i * dx - px, y * sy + j * dy - py
            val = w[k, kw - 1 - i, kh - 1 - j, ch]
            keep = (xi >= 0) & (xi < xin) & (yj >= 0) & (yj < yin) & (val != 0)
            rows_all.append(((x * yo + y) * co + k)[keep])
            cols_all.append(((xi * yin + yj) * cin + (k // og) * cg + ch)[keep])
            vals_all.append(val[keep])
    rows, cols, vals = (np.concatenate(a) for a in (rows_all, cols_all, vals_all))
    m = sp.csr_matrix((vals, (rows, cols)), shape=(xo * yo * co, xin * yin * cin))
    m.sum_duplicates()
    return m


def unroll_block(net: HwNet, b: HwBlock, message_bits: int = 0, f: LoihiLif = LAVA
                 ) -> HwBlock:
    """The kept convolution ``b`` as an exact csr block (kind "dense"; the mapper stores
    it sparse): rows in the target group's order, columns in the source's NIR order, on
    the full-scale grid of ``f`` (the target's family record; default: Lava's)."""
    from snn2hw.backends.netx_blocks import optimize_weight_bits

    in_shape, out_shape = net.shapes[b.source], net.group(b.target).shape
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise DesignRuleError(f"'{b.name}': a convolution between shapes {in_shape} and "
                              f"{out_shape} cannot be unrolled (expected (W, H, C) maps)",
                              hint="This is a compiler bug; report it.")
    hw = conv_matrix(b, in_shape, out_shape)
    layer = b.target.split("[")[0]
    if hw.nnz == 0:
        raise DesignRuleError(f"layer {layer}: its convolution does not fit a core and has no "
                              "non-zero weight to unroll", node=layer,
                              hint="Drop the layer or give it weights.")
    _check_sums(hw, message_bits, layer, f)
    full, nwb, wexp = optimize_weight_bits(hw.data, f)
    _check_exact(hw.data, full, nwb, wexp, layer, f)
    nir = np.asarray(net.layouts[b.source])           # hardware position -> NIR index
    coo = hw.tocoo()
    m = sp.csr_matrix((full.astype(np.int64), (coo.row, nir[coo.col])), shape=hw.shape)
    out = replace(b, kind="dense", weights=m, weight_exp=wexp, num_weight_bits=nwb,
                  sign_mode="auto", conv=None)
    if hasattr(out, "num_message_bits"):
        out = replace(out, num_message_bits=int(message_bits))
    return out


def _check_exact(w: np.ndarray, full: np.ndarray, nwb: int, wexp: int, layer: str,
                 f: LoihiLif) -> None:
    """The sparse block's effective weights (Lava's clip and truncation, as the emulator
    computes them) shifted by weight_exp are the kernel's values, or a one-line refusal."""
    from snn2hw_emulator.engine import effective_weights
    from snn2hw_emulator.program import SynapseBlock

    spec = SynapseBlock("u", "sparse", "s", "t", np.asarray(full).reshape(1, -1),
                        weight_exp=wexp, num_weight_bits=nwb)
    eff = np.asarray(effective_weights(spec, f)).ravel()
    w = np.asarray(w, dtype=np.int64)
    ok = np.array_equal(eff, w << -wexp) if wexp <= 0 else np.array_equal(eff << wexp, w)
    if not ok:
        raise DesignRuleError(
            f"layer {layer}: its convolution does not fit a core, and its kernel values "
            f"({int(w.min())}..{int(w.max())}) cannot be held exactly by a sparse block "
            f"({f.weight_bits_max}-bit full-scale weights sharing one exponent)", node=layer,
            hint=f"Retrain with kernels that fit {f.weight_bits_max} bits, or use smaller "
                 "feature maps so the convolution fits one core.")


def _check_sums(hw: sp.csr_matrix, message_bits: int, layer: str, f: LoihiLif) -> None:
    """Warn where a neuron's worst-case sum leaves Conv's ``conv_bits`` register (there
    Conv wraps and the sparse block does not)."""
    pos = np.asarray(hw.maximum(0).sum(axis=1)).ravel()
    neg = np.asarray((-hw).maximum(0).sum(axis=1)).ravel()
    if message_bits:
        p = 2 ** (message_bits - 1)
        hi, lo = pos * (p - 1) + neg * p, -(pos * p + neg * (p - 1))
    else:
        hi, lo = pos, -neg
    top, bottom = int(hi.max(initial=0)), int(lo.min(initial=0))
    half = 1 << (f.conv_bits - 1)
    if top > half - 1 or bottom < -half:
        warnings.warn(f"layer {layer}: unrolled convolution sums can reach {bottom}..{top}, "
                      f"beyond Conv's {f.conv_bits}-bit register, where a kept convolution "
                      "would wrap and the sparse block does not; they agree while the sums "
                      "stay inside it", stacklevel=3)


__all__ = ["conv_matrix", "unroll_and_plan", "unroll_block", "unroll_oversized_convs"]
