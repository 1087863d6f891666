"""Emulator speed against Lava's fixed-point CPU models and snnTorch, as ratios.

    python bench/bench_emulator.py [--quick]

Feed-forward LIF nets with int8 weights, input spike rate 0.1, T=100 (the figures of
issue 3). Prints timesteps/s (batch 1) or sample-steps/s (batch 256) for each engine
and the ratios from this one run; absolute times on a shared 2-core machine are noisy.
Lava's rate excludes its start-up: two runs of different length, difference of times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from snn2hw import targets
from snn2hw_emulator import engine
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock


def ff_program(sizes: tuple[int, ...], seed: int = 0) -> Program:
    rng = np.random.default_rng(seed)
    groups, blocks, prev = [], [], "in"
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        name = f"L{k}"
        groups.append(NeuronGroup(name, "lif", b, (b,), 1024, 256, 64, np.zeros(b, np.int32),
                                  np.zeros(b, np.int32), np.zeros(b, np.int32),
                                  np.zeros(b, np.int32)))
        w = rng.integers(-128, 128, (b, a)).astype(np.int32) * 2
        blocks.append(SynapseBlock(f"W{k}", "dense", prev, name, w, weight_exp=-1))
        prev = name
    t = targets.load("loihi2")
    cores = tuple(Core(i, 0, (g.name,), (blocks[i].name,)) for i, g in enumerate(groups))
    return Program(t.name, t.sha256, t.toml, (Port("in", sizes[0], (sizes[0],)),), tuple(groups),
                   tuple(blocks), cores, (OutputPort("out", groups[-1].name),))


def spikes(n: int, batch: int, steps: int) -> np.ndarray:
    return (np.random.default_rng(1).random((batch, steps, n)) < 0.1).astype(np.int8)


def rate(fn, units: int, repeat: int = 3) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return units / best


def lava_rate(program: Program, steps: int) -> float | None:
    try:
        from snn2hw.backends import lava
    except ImportError:
        return None
    times = []
    for t in (steps, 3 * steps):
        x = spikes(program.ports[0].size, 1, t)
        t0 = time.perf_counter()
        lava.run(program, x)
        times.append(time.perf_counter() - t0)
    return 2 * steps / max(times[1] - times[0], 1e-9)


def snntorch_rate(sizes: tuple[int, ...], batch: int, steps: int) -> float | None:
    try:
        import snntorch as snn
        import torch
    except ImportError:
        return None
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), snn.Leaky(beta=0.9, init_hidden=True)]
    net = torch.nn.Sequential(*layers)
    x = torch.from_numpy(spikes(sizes[0], batch, steps).astype(np.float32))

    def go() -> None:
        import snntorch.utils
        snntorch.utils.reset(net)
        with torch.no_grad():
            for t in range(steps):
                net(x[:, t])
    return rate(go, batch * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip Lava and batch 256")
    args = parser.parse_args()
    steps = 100
    cases = [((784, 256, 10), 1), ((16, 128, 8), 1)] + ([] if args.quick else
                                                        [((784, 256, 10), 256)])
    print(f"{'net':<12} {'batch':>5} {'engine':<18} {'rate':>12}  ratio")
    for sizes, batch in cases:
        program = ff_program(sizes)
        x = spikes(sizes[0], batch, steps)
        unit = "steps/s" if batch == 1 else "sample-steps/s"
        rows = {"emulator batch": rate(lambda: engine.run(program, x, cost=False),
                                       batch * steps)}
        if batch == 1:
            rows["emulator event"] = rate(lambda: engine.run(program, x, mode="event",
                                                             cost=False), steps)
            rows["emulator +cost"] = rate(lambda: engine.run(program, x), steps)
            if not args.quick:
                rows["lava fixed_pt"] = lava_rate(program, steps)
        rows["snntorch float"] = snntorch_rate(sizes, batch, steps)
        base = rows.get("lava fixed_pt") or rows["snntorch float"]
        name = "-".join(map(str, sizes))
        for label, value in rows.items():
            if value is None:
                print(f"{name:<12} {batch:>5} {label:<18} {'n/a':>12}")
                continue
            ratio = f"{value / base:6.1f}x vs {'Lava' if rows.get('lava fixed_pt') else 'snnTorch'}"
            print(f"{name:<12} {batch:>5} {label:<18} {value:>12,.0f}  {ratio} ({unit})")


if __name__ == "__main__":
    main()
