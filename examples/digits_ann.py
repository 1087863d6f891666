"""ANN-to-SNN conversion on scikit-learn's digits: an MLP and a small CNN trained with
PyTorch, exported to ONNX, converted by snn2hw (data-based normalisation, rate-coded IF
neurons, reset to zero as Loihi does), compiled for loihi2 and run on the emulator.

    python examples/digits_ann.py [--out examples/out] [--steps 32 64 128]

Prints, per network and T: ANN accuracy, converted SNN accuracy in the float reference and
on the emulator (held-out split, 360 images) with Bernoulli input spikes and with the
deterministic constant-current encoder, and for comparison the float SNN with reset by
subtraction (which Loihi cannot run). Also exports each ANN as a torch.export archive
(``.pt2``) and checks that it converts to the same layers as the ONNX file.
"""

from __future__ import annotations

import reproducible  # noqa: I001  (first: pins torch's CPU kernels before torch loads)
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from snn2hw import compiler, execute, reference
from snn2hw.importers import ann
from snn2hw.importers.torch_export import from_exported
from snn2hw.verify import decode

SEED = 0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x = (d.data / 16.0).reshape(-1, 1, 8, 8)
    return train_test_split(x, d.target, test_size=0.2, random_state=SEED, stratify=d.target)


def mlp() -> torch.nn.Module:
    torch.manual_seed(SEED)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def cnn() -> torch.nn.Module:
    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 2 * 2, 10))


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 60) -> None:
    """Seeded and single-threaded on a pinned kernel path: the same weights on every
    machine of this kind (examples/reproducible.py)."""
    with reproducible.training(SEED):
        for p in net.parameters():
            if p.dim() > 1:
                torch.nn.init.kaiming_uniform_(p, nonlinearity="relu")
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
        gen = torch.Generator().manual_seed(SEED)
        net.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(xt), generator=gen).split(64):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
                opt.step()
        net.eval()


def export(net: torch.nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 1, 8, 8), str(path), dynamo=False,
                          input_names=["x"], output_names=["logits"])


def export_pt2(net: torch.nn.Module, path: Path) -> None:
    torch.export.save(torch.export.export(net, (torch.zeros(1, 1, 8, 8),)), str(path))


def _accuracy(graph, spikes: np.ndarray, y: np.ndarray) -> float:
    out = reference.simulate(graph, spikes.astype(float)).outputs["output"]
    return float((decode(out, True) == y).mean())


def _emulator(graph, spikes: np.ndarray, calib: np.ndarray, y: np.ndarray
              ) -> tuple[float, compiler.Compiled, float]:
    start = time.perf_counter()
    compiled = compiler.compile(graph, compiler.Options(target="loihi2"),
                                calibration=calib.astype(float))
    seconds = time.perf_counter() - start
    hw = execute.run(compiled.program, spikes)
    return float((decode(hw.outputs["output"], True) == y).mean()), compiled, seconds


def evaluate(name: str, onnx_path: Path, x_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, steps_list: list[int]) -> list[dict]:
    """Per T: ANN, float SNN and emulator accuracy with Bernoulli input, the same with the
    deterministic constant-current encoder, and the float SNN with reset by subtraction."""
    model = ann.from_onnx(onnx_path)
    ann_acc = float((model.forward(x_test)[-1].argmax(axis=1) == y_test).mean())
    graph = ann.convert(model, x_train)
    subtract = ann.convert(model, x_train, reset="subtract")     # for comparison only
    scale = float(graph.metadata["input_scale"])
    rows = []
    for steps in steps_list:
        spikes = ann.encode(x_test, steps, scale, seed=1)
        calib = ann.encode(x_train[:200], steps, scale, seed=2)
        emu_acc, compiled, seconds = _emulator(graph, spikes, calib, y_test)
        regular = ann.encode(x_test, steps, scale, method="current")
        emu_cur, _, _ = _emulator(graph, regular, ann.encode(x_train[:200], steps, scale,
                                                             method="current"), y_test)
        rows.append(dict(net=name, steps=steps, ann=ann_acc,
                         snn=_accuracy(graph, spikes, y_test), emulator=emu_acc,
                         snn_current=_accuracy(graph, regular, y_test), emulator_current=emu_cur,
                         snn_subtract=_accuracy(subtract, spikes, y_test),
                         cores=compiled.report["cores"], compile_s=seconds))
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'':<9} {'':>7} {'Bernoulli input':^35} {'constant current':^20}",
             f"{'net':<4} {'T':>4} {'ANN':>7} {'SNN float':>10} {'emulator':>9} "
             f"{'SNN-ANN':>7} {'emu-SNN':>7} {'SNN float':>10} {'emulator':>9} "
             f"{'cores':>5} {'SNN subtract':>13}"]
    for r in rows:
        lines.append(f"{r['net']:<4} {r['steps']:>4} {100 * r['ann']:>6.2f}% "
                     f"{100 * r['snn']:>9.2f}% {100 * r['emulator']:>8.2f}% "
                     f"{100 * (r['snn'] - r['ann']):>+7.2f} "
                     f"{100 * (r['emulator'] - r['snn']):>+7.2f} "
                     f"{100 * r['snn_current']:>9.2f}% {100 * r['emulator_current']:>8.2f}% "
                     f"{r['cores']:>5} {100 * r['snn_subtract']:>12.2f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--steps", type=int, nargs="+", default=[32, 64, 128])
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = data()
    rows = []
    for name, build in (("mlp", mlp), ("cnn", cnn)):
        net = build()
        t0 = time.perf_counter()
        train(net, x_train, y_train)
        path = out / f"digits_{name}.onnx"
        export(net, path)
        export_pt2(net, out / f"digits_{name}.pt2")
        same = np.allclose(ann.from_onnx(path).forward(x_test)[-1],     # float32 files
                           from_exported(out / f"digits_{name}.pt2").forward(x_test)[-1],
                           rtol=1e-4, atol=1e-4)
        print(f"trained {name} in {time.perf_counter() - t0:.0f} s, exported {path} and "
              f"{path.with_suffix('.pt2').name} (front ends agree: {same})")
        rows += evaluate(name, path, x_train, x_test, y_test, args.steps)
    np.save(out / "digits_ann_calib.npy", x_train[:200])
    print("ANN -> SNN conversion, digits held-out split (reset to zero; emulator: loihi2):")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
