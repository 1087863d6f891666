"""Train a small SNN on scikit-learn's digits with snnTorch, export it to NIR, and check
that snn2hw's float reference simulator reproduces snnTorch's accuracy exactly.

    python examples/digits_snn.py [--epochs 30] [--out examples/out]

Data: the 1,797 bundled 8x8 digit images, rate-encoded (pixel/16 = spike probability
per step) over T steps. Network: 64 -> 128 Leaky -> 10 Leaky, reset to zero,
``reset_delay=False`` (the only reset timing NIR and hardware can represent).
Writes ``OUT/digits.nir`` (the graph), ``OUT/digits_test.npz`` (encoded test spikes
and labels), ``OUT/digits_all.npz`` (all 1,797 images encoded, for measuring what
quantisation changes) and ``OUT/digits_snn.pt`` (the trained weights). Training is
reproducible: the same weights on every run and machine of this kind
(``reproducible.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import reproducible  # first: pins torch's CPU kernels before torch loads
import snntorch as snn
import snntorch.functional as sf
import snntorch.utils
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from snn2hw import nirio, reference
from snn2hw.importers.snntorch import from_snntorch

STEPS = 25
HIDDEN = 128
SEED = 0


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Forward spike function that keeps the dtype (used to run the model in float64)."""
    return (x > 0).to(x.dtype)


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.2, random_state=SEED,
                            stratify=digits.target)


def encode(x: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Rate code: (N, 64) intensities in [0, 1] -> (N, T, 64) spikes in {0, 1}."""
    rng = np.random.default_rng(seed)
    return (rng.random((x.shape[0], steps, x.shape[1])) < x[:, None, :]).astype(np.float32)


def build() -> torch.nn.Sequential:
    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN),
        snn.Leaky(beta=torch.full((HIDDEN,), 0.9), init_hidden=True, reset_mechanism="zero",
                  reset_delay=False),
        torch.nn.Linear(HIDDEN, 10),
        snn.Leaky(beta=torch.full((10,), 0.9), init_hidden=True, reset_mechanism="zero",
                  reset_delay=False),
    )


def forward(net: torch.nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """(B, T, 64) -> output spikes (T, B, 10), stepping snnTorch one step at a time."""
    snntorch.utils.reset(net)
    return torch.stack([net(spikes[:, t]) for t in range(spikes.shape[1])])


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """Seeded and single-threaded on a pinned kernel path: the same weights on every
    machine of this kind (examples/reproducible.py)."""
    with reproducible.training(SEED):
        _train(net, x, y, epochs)


def _train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    loss_fn = sf.ce_rate_loss()
    gen = np.random.default_rng(SEED + 1)
    for epoch in range(epochs):
        order = gen.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            spikes = torch.from_numpy(encode(x[idx], STEPS, int(gen.integers(1 << 31))))
            loss = loss_fn(forward(net, spikes), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1:3d}  loss {total / len(x):.4f}")


def predict(counts: np.ndarray) -> np.ndarray:
    """Class = most output spikes (ties: lowest index), counts (B, 10)."""
    return np.argmax(counts, axis=1)


def snntorch_counts(net: torch.nn.Module, spikes: np.ndarray) -> np.ndarray:
    """Output spike counts from snnTorch's own forward pass, in float64."""
    net64 = net.double()
    for m in net64.modules():
        if isinstance(m, snn.Leaky):
            m.spike_grad = heaviside
    with torch.no_grad():
        out = forward(net64, torch.from_numpy(spikes.astype(np.float64)))
    return out.sum(0).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    x_train, x_test, y_train, y_test = load_data()
    print(f"digits: {len(x_train)} train / {len(x_test)} test images, 8x8, "
          f"rate-encoded over {STEPS} steps")
    net = build()
    print(f"training 64-{HIDDEN}-10 Leaky SNN with snnTorch for {args.epochs} epochs ...")
    train(net, x_train, y_train, args.epochs)
    net.eval()

    test_spikes = encode(x_test, STEPS, seed=SEED + 2)
    graph = from_snntorch(net, torch.from_numpy(test_spikes[:2, 0]))
    nir_path = args.out / "digits.nir"
    nirio.write(graph, nir_path)
    graph = nirio.read(nir_path)           # the reference runs on what was written
    np.savez_compressed(args.out / "digits_test.npz", spikes=test_spikes.astype(np.int8),
                        labels=y_test)
    digits = load_digits()                 # every image, for measuring quantisation gaps
    np.savez_compressed(args.out / "digits_all.npz", labels=digits.target, spikes=encode(
        (digits.data / 16.0).astype(np.float32), STEPS, seed=SEED + 3).astype(np.int8))
    torch.save(net.state_dict(), args.out / "digits_snn.pt")

    torch_counts = snntorch_counts(net, test_spikes)
    ref = reference.simulate(graph, test_spikes.astype(np.float64), dt=1e-4)
    ref_counts = next(iter(ref.outputs.values())).sum(axis=1)
    acc_torch = float(np.mean(predict(torch_counts) == y_test))
    acc_ref = float(np.mean(predict(ref_counts) == y_test))
    same = int(np.sum(predict(torch_counts) == predict(ref_counts)))
    print(f"wrote {nir_path} ({len(graph.nodes)} nodes)")
    print(f"float accuracy, snnTorch forward pass : {acc_torch:.2%}")
    print(f"float accuracy, snn2hw reference      : {acc_ref:.2%}")
    print(f"identical output spike counts on {int(np.all(torch_counts == ref_counts, axis=1).sum())}"
          f"/{len(y_test)} test images; same prediction on {same}/{len(y_test)}")
    if acc_torch != acc_ref:
        print("MISMATCH: the reference simulator disagrees with snnTorch")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
