"""ANN-to-SNN importers: ONNX and PyTorch front ends, conversion, bad input, CLI."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from snn2hw import reference
from snn2hw.cli import main
from snn2hw.errors import ModelFileError, UnsupportedError, UserInputError
from snn2hw.importers import ann
from snn2hw.importers.torch_export import from_exported
from snn2hw.verify import decode


def _export(net: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), torch.zeros(1, *shape), str(path), dynamo=False)
    return path


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Dropout(0.1),
        torch.nn.Conv2d(4, 6, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 3))
    with torch.no_grad():                      # non-trivial batch-norm statistics
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
        net[1].weight.uniform_(0.5, 1.5)
    return net.eval()


def _export_pt2(net: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    torch.export.save(torch.export.export(net.eval(), (torch.zeros(1, *shape),)), str(path))
    return path


def test_onnx_torch_and_torch_export_front_ends_match_torch(tmp_path: Path) -> None:
    net = _cnn()
    x = np.random.default_rng(0).random((5, 2, 8, 8))
    want = net(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    from_onnx = ann.from_onnx(_export(net, (2, 8, 8), tmp_path / "cnn.onnx"))
    from_torch = ann.from_torch(net, (2, 8, 8))
    from_pt2 = from_exported(_export_pt2(net, (2, 8, 8), tmp_path / "cnn.pt2"))
    assert from_pt2.input_shape == (2, 8, 8)
    for model in (from_onnx, from_torch, from_pt2):
        assert [layer.kind for layer in model.layers] == [
            "conv", "relu", "avgpool", "conv", "relu", "avgpool", "flatten", "dense"]
        np.testing.assert_allclose(model.forward(x)[-1], want, rtol=1e-4, atol=1e-5)


def _gemm_model(ops: list[tuple[str, dict]], path: Path, n_in: int = 4) -> Path:
    """Input -> Gemm(4->3) -> Relu -> <ops...> -> Gemm(3->2), built with onnx.helper."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(3, n_in)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(size=(2, 3)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu1")]
    prev = "r"
    for k, (op, attrs) in enumerate(ops):
        nodes.append(helper.make_node(op, [prev], [f"o{k}"], name=f"{op.lower()}{k}", **attrs))
        prev = f"o{k}"
    nodes.append(helper.make_node("MatMul", [prev, "w2t"], ["m"], name="fc2"))
    inits.append(numpy_helper.from_array(numpy_helper.to_array(inits[2]).T.copy(), "w2t"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, n_in])], [helper.make_tensor_value_info(
            "m", TensorProto.FLOAT, [1, 2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_gemm_and_matmul_convert_to_if_and_readout(tmp_path: Path) -> None:
    model = ann.from_onnx(_gemm_model([("Identity", {})], tmp_path / "m.onnx"))
    assert [layer.kind for layer in model.layers] == ["dense", "relu", "dense"]
    x = np.random.default_rng(2).random((200, 4))
    graph = ann.convert(model, x)
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert {"IF", "I", "Affine"} <= kinds and graph.metadata["reset"] == "zero"
    spikes = ann.encode(x[:50], 400, graph.metadata["input_scale"], seed=3)
    out = reference.simulate(graph, spikes.astype(float)).outputs["output"]
    assert (decode(out, True) == model.forward(x[:50])[-1].argmax(axis=1)).mean() > 0.9


def test_max_pool_is_an_error_naming_node_and_replacement(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 2))
    path = _export(net, (1, 8, 8), tmp_path / "mp.onnx")
    with pytest.raises(UnsupportedError) as err:
        ann.from_onnx(path)
    assert "MaxPool" in str(err.value) and "average pooling" in str(err.value)
    with pytest.warns(UserWarning, match="replaced by average pooling"):
        model = ann.from_onnx(path, approximate=("maxpool-as-avgpool",))
    assert [layer.kind for layer in model.layers][2] == "avgpool"
    with pytest.raises(UnsupportedError, match="MaxPool2d"):
        ann.from_torch(net, (1, 8, 8))


def test_torch_export_mlp_with_global_mean_and_view(tmp_path: Path) -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3)
            self.fc = torch.nn.Linear(3, 2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.conv(x)).mean(dim=(2, 3))     # global average, no keepdim
            return self.fc(h.view(h.shape[0], -1))

    torch.manual_seed(1)
    net = Net().eval()
    x = np.random.default_rng(1).random((4, 1, 6, 6))
    model = from_exported(_export_pt2(net, (1, 6, 6), tmp_path / "m.pt2"))
    assert [layer.kind for layer in model.layers] == [
        "conv", "relu", "avgpool", "flatten", "flatten", "dense"]
    want = net(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(model.forward(x)[-1], want, rtol=1e-4, atol=1e-5)


def test_torch_export_refuses_what_does_not_convert(tmp_path: Path) -> None:
    mp = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                             torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 2))
    with pytest.raises(UnsupportedError, match="max_pool2d.*no spiking equivalent"):
        from_exported(_export_pt2(mp, (1, 8, 8), tmp_path / "mp.pt2"))
    sig = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 2))
    with pytest.raises(UnsupportedError, match="sigmoid.*not supported"):
        from_exported(_export_pt2(sig, (4,), tmp_path / "sig.pt2"))
    bad = tmp_path / "broken.pt2"
    bad.write_bytes((tmp_path / "sig.pt2").read_bytes()[:300])
    with pytest.raises(ModelFileError):
        from_exported(bad)


def test_pickled_torch_files_are_refused_not_unpickled(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    np.save(tmp_path / "x.npy", np.ones((3, 4)))
    for name, obj in (("model.pt", net), ("state.pt", net.state_dict())):
        torch.save(obj, tmp_path / name)
        assert main(["import", str(tmp_path / name), "--calibrate", str(tmp_path / "x.npy"),
                     "-o", str(tmp_path / "m.nir")]) == 2
        err = capsys.readouterr().err
        assert "pickled PyTorch file" in err and "torch.export.save" in err
    assert not (tmp_path / "m.nir").exists()


def test_current_encoding_is_deterministic_and_exact_in_count() -> None:
    x = np.array([[0.0, 0.25, 0.5, 1.0 / 3, 1.0]])
    s = ann.encode(x, 12, 1.0, method="current")
    assert s.shape == (1, 12, 5) and set(np.unique(s)) <= {0, 1}
    assert list(s.sum(axis=1)[0]) == [0, 3, 6, 4, 12]           # floor(T * p) spikes
    assert list(np.flatnonzero(s[0, :, 1])) == [3, 7, 11]      # regular: every 4th step
    np.testing.assert_array_equal(s, ann.encode(x, 12, 1.0, seed=9, method="current"))
    with pytest.raises(UserInputError, match="unknown input encoding 'gauss'"):
        ann.encode(x, 12, 1.0, method="gauss")


def test_unknown_op_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError) as err:
        ann.from_onnx(_gemm_model([("Sigmoid", {})], tmp_path / "s.onnx"))
    assert "Sigmoid" in str(err.value) and "sigmoid0" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not a protobuf \x00\xff" * 10])
def test_malformed_onnx_file_is_a_model_file_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        ann.from_onnx(bad)


def test_onnx_that_fails_the_checker(tmp_path: Path) -> None:
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1, 2])])             # 'x' is never defined
    path = tmp_path / "broken.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        ann.from_onnx(path)


def test_hidden_layer_without_relu_is_refused() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    with pytest.raises(UnsupportedError, match="not followed by ReLU"):
        ann.convert(ann.from_torch(net, (4,)), np.ones((3, 4)))


def test_cli_import_and_compile_take_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    path = _export(_cnn(), (2, 8, 8), tmp_path / "cnn.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(4).random((40, 2, 8, 8)))
    assert main(["import", str(path), "--calibrate", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "cnn.nir")]) == 0
    assert (tmp_path / "cnn.nir").is_file()
    assert main(["compile", str(path), "--calibrate", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "out")]) == 0
    assert "conv" in capsys.readouterr().out
    pt2 = _export_pt2(_cnn(), (2, 8, 8), tmp_path / "cnn.pt2")
    assert main(["inspect", str(pt2)]) == 0
    assert "pt2 ANN, input (2, 8, 8)" in capsys.readouterr().out
    assert main(["import", str(pt2), "--calibrate", str(tmp_path / "x.npy"), "--encoding",
                 "current", "-o", str(tmp_path / "pt2.nir")]) == 0
    assert "current spikes" in capsys.readouterr().out
    assert main(["compile", str(pt2), "--calibrate", str(tmp_path / "x.npy"), "--encoding",
                 "current", "-o", str(tmp_path / "out_pt2")]) == 0
    assert (tmp_path / "out_pt2" / "program.h5").is_file()
    assert main(["compile", str(path), "-o", str(tmp_path / "out2")]) == 2
    assert "needs calibration data" in capsys.readouterr().err


@pytest.mark.slow
def test_digits_conversion_meets_the_accuracy_goals(digits_anns: Any) -> None:
    """The goals: the converted SNN within 1.5 pp of the ANN, the loihi2 emulator within
    0.5 pp of the float SNN, at T = 128, with Bernoulli and constant-current input.

    Both are gaps between two models on the same inputs, so they are measured on all
    1,797 images (a gap needs no held-out data): one image is 0.06 pp there, and the
    paired difference of two models that disagree on 1% of samples has a standard error
    of 0.24 pp, so 0.5 pp is resolved; on the 360 held-out images it would be less than
    two images. With the accuracy difference we assert per-sample agreement, which a
    difference of zero can hide: >= 99% for emulator vs float SNN (quantisation), and
    >= 98% for SNN vs ANN (rate coding over 128 steps). Training is reproducible
    (examples/reproducible.py), and these bounds hold with margin (README table)."""
    import digits_ann

    digits = digits_anns.digits
    rows = []
    for name in ("mlp", "cnn"):
        rows += digits_ann.evaluate(name, digits_anns.path(name), digits, [128])
    print(digits_ann.table(rows))
    for r in rows:
        assert r["ann"] > 0.93, r                                  # held-out, a sanity floor
        for enc in ("", "_current"):
            assert r[f"snn_ann_diff{enc}"] >= -0.015, (enc, r)     # SNN within 1.5 pp of ANN
            assert r[f"snn_ann_agree{enc}"] >= 0.98, (enc, r)
            assert abs(r[f"emu_snn_diff{enc}"]) <= 0.005, (enc, r)  # emulator within 0.5 pp
            assert r[f"emu_snn_agree{enc}"] >= 0.99, (enc, r)
