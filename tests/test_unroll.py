"""passes/unroll.py: a kept convolution that does not fit a core becomes an exact sparse
block (the same sums as Lava's Conv, the same effective integers), or a one-line refusal
naming the layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from snn2hw_emulator import engine, kernels
from snn2hw_emulator.program import SynapseBlock

from snn2hw.errors import DesignRuleError
from snn2hw.passes import unroll
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet
from snn2hw.targets import load


def _conv(rng: np.random.Generator, c_out: int, c_in: int, k: int, stride: int, pad: int,
          groups: int = 1, dilation: int = 1, lo: int = -128, hi: int = 128) -> HwBlock:
    w = rng.integers(lo, hi, (c_out, k, k, c_in // groups))
    w[rng.random(w.shape) < 0.2] = 0
    conv = {"stride": (stride, stride), "padding": (pad, pad),
            "dilation": (dilation, dilation), "groups": groups}
    return HwBlock("L.w", "input", "L", "conv", w, 0, 8, "auto", conv=conv)


def _out_shape(b: HwBlock, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c = b.conv
    k = b.weights.shape[1]
    size = [(n + 2 * c["padding"][i] - c["dilation"][i] * (k - 1) - 1) // c["stride"][i] + 1
            for i, n in enumerate(shape[:2])]
    return (size[0], size[1], b.weights.shape[0])


@pytest.mark.parametrize("geometry", [(6, 3, 3, 2, 1, 1, 1), (4, 4, 3, 1, 0, 2, 1),
                                      (5, 2, 2, 1, 1, 1, 2)])
def test_the_unrolled_matrix_gives_the_reference_convolution(geometry) -> None:
    c_out, c_in, k, stride, pad, groups, dil = geometry
    rng = np.random.default_rng(c_out)
    b = _conv(rng, c_out, c_in, k, stride, pad, groups, dil)
    size_in = (7, 9, c_in)
    size_out = _out_shape(b, size_in)
    m = unroll.conv_matrix(b, size_in, size_out)
    for graded in (False, True):
        x = rng.integers(-5, 6, int(np.prod(size_in))) * (rng.random(int(np.prod(size_in)))
                                                          < 0.4)
        want = kernels.conv_activation(b.weights.tolist(), x.tolist(), size_in, size_out,
                                       b.conv["stride"], b.conv["padding"],
                                       b.conv["dilation"], groups, graded)
        got = m @ (x if graded else (x != 0).astype(np.int64))
        assert np.array_equal(got, want), int(np.sum(got != want))
    assert m.nnz == np.count_nonzero(m.data) > 0


def _net(b: HwBlock, shape_in: tuple[int, int, int]) -> HwNet:
    shape_out = _out_shape(b, shape_in)
    n = int(np.prod(shape_out))
    rng = np.random.default_rng(1)
    index = rng.permutation(n)                        # any hardware -> NIR layout
    g = HwGroup("L", "L", index, shape_out, "lif", 0, 0, 10, 64.0, np.zeros(n, np.int64),
                np.zeros(n, np.int64), np.zeros(n, np.int64), 1)
    n_in = int(np.prod(shape_in))
    layout = rng.permutation(n_in)
    return HwNet((g,), (b,), {"input": layout, "L": index}, {"input": shape_in, "L": shape_out},
                 ("input",), {"output": "L"})


def test_an_oversized_conv_is_unrolled_with_the_same_effective_integers() -> None:
    """tiny's cores hold 16 neurons: a 4x5x5 map is unrolled; the sparse block's
    effective weights (Lava's clip and truncation, then weight_exp) are the kernel's
    taps, columns in the source's NIR order, rows in the group's order."""
    rng = np.random.default_rng(3)
    b = _conv(rng, 4, 2, 3, 1, 1, lo=-64, hi=64)
    b = dataclasses.replace(b, weights=b.weights * 2)         # even taps: weight_exp -1..
    net = _net(b, (5, 5, 2))
    out = unroll.unroll_oversized_convs(net, load("tiny"))
    (u,) = out.blocks
    assert sp.issparse(u.weights) and u.kind == "dense" and u.conv is None
    assert out.report["unrolled"]["L.w"]["reason"].startswith("conv unrolled to sparse")
    assert "neurons 100 > 16" in out.report["unrolled"]["L.w"]["reason"]
    spec = SynapseBlock("s", "sparse", "input", "L", u.weights, weight_exp=u.weight_exp,
                        num_weight_bits=u.num_weight_bits)
    eff = engine.effective_weights(spec).toarray()
    hw = unroll.conv_matrix(b, (5, 5, 2), (5, 5, 4)).toarray()
    shifted = eff >> -u.weight_exp if u.weight_exp < 0 else eff << u.weight_exp
    assert np.array_equal(shifted[:, net.layouts["input"]], hw)
    assert out.spatial["L"] == (4, 5, 5)


def test_a_conv_that_fits_is_kept() -> None:
    b = _conv(np.random.default_rng(4), 2, 1, 3, 2, 1)
    net = _net(b, (5, 5, 1))                                 # 2x3x3 = 18 neurons
    out = unroll.unroll_oversized_convs(net, load("loihi2"))
    assert out.blocks[0].kind == "conv" and "unrolled" not in out.report


def test_a_kernel_no_sparse_block_holds_is_refused_naming_the_layer() -> None:
    """Taps 1 and 300 (mixed signs) need more than 8 bits of mantissa: a Sparse block
    would clip them, so the unroll is refused in one line."""
    b = _conv(np.random.default_rng(5), 4, 2, 3, 1, 1)
    w = b.weights.copy()
    w[0, 0, 0, 0], w[1, 1, 1, 1], w[2, 1, 1, 0] = 1, 300, -7
    with pytest.raises(DesignRuleError, match=r"layer L: its convolution does not fit a core"
                                              r".*cannot be held exactly") as err:
        unroll.unroll_oversized_convs(_net(dataclasses.replace(b, weights=w), (5, 5, 2)),
                                      load("tiny"))
    assert "\n" not in str(err.value)


def test_graded_input_beyond_the_conv_register_is_warned_about() -> None:
    b = _conv(np.random.default_rng(6), 4, 2, 3, 1, 1)
    with pytest.warns(UserWarning, match="beyond Conv's 24-bit register"):
        unroll.unroll_oversized_convs(_net(b, (5, 5, 2)), load("tiny"),
                                      message_bits={"input": 24})
