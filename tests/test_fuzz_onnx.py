"""ONNX models with one thing wrong (importers/onnx_check.py): ``inspect`` and ``import``
exit 2 with one line, no traceback, nothing written. Each model is built with onnx.helper
from a small valid one: Input(4) -> Gemm(4->3) -> Relu -> MatMul(3->2), or a 1x6x6 image
through Conv(2, 3x3) -> Relu -> Flatten -> Gemm(32->2)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_fuzz import SEED, _refused

from snn2hw.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper


def _dense(*, opset: int = 13, dims: list[Any] | None = None, w1: Any = None,
           w2: np.ndarray | None = None, domain: str = "") -> Any:
    rng = np.random.default_rng(SEED)
    w1 = numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "w1") \
        if w1 is None else w1
    w2 = rng.normal(size=(3, 2)).astype(np.float32) if w2 is None else w2
    inits = [w1, numpy_helper.from_array(np.zeros(3, np.float32), "b1"),
             numpy_helper.from_array(w2, "w2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu1", domain=domain),
             helper.make_node("MatMul", ["r", "w2"], ["m"], name="fc2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["B"] + (dims if dims is not None else [4]))],
        [helper.make_tensor_value_info("m", TensorProto.FLOAT, ["B", 2])], inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain
                                                 else [])
    return helper.make_model(graph, opset_imports=opsets)


def _conv(**attrs: Any) -> Any:
    rng = np.random.default_rng(SEED)
    geometry = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [0, 0, 0, 0],
                "group": 1} | attrs
    inits = [numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "wc"),
             numpy_helper.from_array(rng.normal(size=(2, 32)).astype(np.float32), "wf")]
    nodes = [helper.make_node("Conv", ["x", "wc"], ["c"], name="conv1", **geometry),
             helper.make_node("Relu", ["c"], ["r"], name="relu1"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["B", 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _typed(dtype: int, values: list[Any]) -> Any:
    return helper.make_tensor("w1", dtype, [3, 4], values * 12 if len(values) == 1 else values)


#: case -> (model, what the one line must name)
CASES: dict[str, tuple[Any, str]] = {
    "opset-5": (_dense(opset=5), "opset"),
    "opset-99": (_dense(opset=99), "opset"),
    "custom-domain": (_dense(domain="com.example"), "domain"),
    "dim-zero": (_dense(dims=[0]), "input"),
    "dim-negative": (_dense(dims=[-3]), "input"),
    "dim-symbolic": (_dense(dims=["N"]), "input"),
    "dim-1e12": (_dense(dims=[10**12]), "input"),
    "dims-1e12-product": (_dense(dims=[10**6, 10**6]), "input"),
    "init-string": (_dense(w1=helper.make_tensor("w1", TensorProto.STRING, [3, 4],
                                                 [b"a"] * 12)), "w1"),
    "init-bool": (_dense(w1=_typed(TensorProto.BOOL, [True])), "w1"),
    "init-complex": (_dense(w1=_typed(TensorProto.COMPLEX64, [1 + 1j])), "w1"),
    "init-nan": (_dense(w1=_typed(TensorProto.FLOAT, [float("nan")])), "w1"),
    "init-inf": (_dense(w1=_typed(TensorProto.FLOAT, [float("inf")])), "w1"),
    "weight-shape": (_dense(w2=np.ones((5, 2), np.float32)), "fc2"),
    "weight-shape-gemm": (_dense(w1=numpy_helper.from_array(np.ones((3, 7), np.float32),
                                                            "w1")), "fc1"),
    "gemm-weight-1d": (_dense(w1=numpy_helper.from_array(np.ones(12, np.float32), "w1")),
                       "fc1"),
    "matmul-weight-1d": (_dense(w2=np.ones(3, np.float32)), "fc2"),
    "conv-stride-0": (_conv(strides=[0, 0]), "strides"),
    "conv-pads-negative": (_conv(pads=[-1, -1, -1, -1]), "pads"),
    "conv-group-0": (_conv(group=0), "group"),
    "conv-kernel-huge": (_conv(kernel_shape=[10**6, 3]), "kernel_shape"),
    "conv-fc-shape": (_conv(pads=[1, 1, 1, 1]), "fc"),
}


def test_valid_models_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The two starting models inspect and import: each case differs in one thing."""
    for name, model, shape in (("dense", _dense(), (8, 4)), ("conv", _conv(), (8, 1, 6, 6))):
        onnx.save(model, tmp_path / f"{name}.onnx")
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(SEED).random(shape))
        assert main(["inspect", str(tmp_path / f"{name}.onnx")]) == 0
        assert main(["import", str(tmp_path / f"{name}.onnx"), "--calibrate",
                     str(tmp_path / f"{name}.npy"), "-o", str(tmp_path / f"{name}.nir")]) == 0
    capsys.readouterr()


def test_onnx_surgery_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(SEED).random((8, 4)))
    names = sorted(CASES)
    random.Random(SEED).shuffle(names)
    for name in names:
        model, word = CASES[name]
        bad = tmp_path / f"{name}.onnx"
        bad.write_bytes(model.SerializeToString())
        for argv in (["inspect", bad], ["import", bad, "--calibrate", calib, "-o",
                                        tmp_path / "out.nir"]):
            err = _refused(argv, tmp_path, capsys)
            assert word in err, (name, err)
        bad.unlink()
