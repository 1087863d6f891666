"""Emulator speed against Lava's fixed-point CPU models and snnTorch, as ratios.

    python bench/bench_emulator.py [--quick]

Feed-forward LIF nets with int8 weights, input spike rate 0.1, T=100 (the table of
issue 15), the emulator through the device interface with its cost model, as
``snn2hw run`` uses it, in its default (time-batched) mode and in the per-step and
event modes. Prints timesteps/s (batch 1) or sample-steps/s (batch 256) and the ratios
to snnTorch from this one run (best of 3), with numba's loops and torch loaded first (as
in a long-running process); absolute times on a shared 2-core machine are noisy. Lava's rate excludes its start-up: two runs of different length.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from snn2hw_emulator import engine
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw import targets


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


def rate(fn, units: int, repeat: int = 3) -> float:
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


def device_rate(program: Program, x: np.ndarray, mode: str, units: int) -> float:
    """Through the device interface, as a user runs it (cost model included)."""
    from snn2hw import devices

    dev = devices.EmulatorDevice(mode).load(program)
    return rate(lambda: dev.run(x), units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip Lava and the 784-1024-1024-10 net")
    args = parser.parse_args()
    steps = 100
    cases = [((784, 256, 10), 256)] + ([] if args.quick else [((784, 1024, 1024, 10), 256)]) \
        + [((784, 256, 10), 1), ((16, 128, 8), 1)]
    # a long-running process (a data-set verify) has numba's loops and torch loaded; their
    # one-time import (~1 s and ~2 s) is not in the rates
    from snn2hw_emulator import lifloop
    lifloop._jit()
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    engine.run(ff_program((16, 128, 8)), spikes(16, 256, 2))
    print(f"{'net':<16} {'batch':>5} {'engine':<22} {'rate':>12}  ratio")
    for sizes, batch in cases:
        program = ff_program(sizes)
        x = spikes(sizes[0], batch, steps)
        unit = "steps/s" if batch == 1 else "sample-steps/s"
        n = batch * steps
        rows = {"emulator (batch)": device_rate(program, x, "batch", n),
                "emulator step mode": device_rate(program, x, "step", n)}
        if batch == 1:
            rows["emulator event mode"] = device_rate(program, x, "event", n)
            rows["emulator, no cost"] = rate(lambda: engine.run(program, x, cost=False), n)
            if not args.quick:
                rows["lava fixed_pt"] = lava_rate(program, steps)
        rows["snntorch float"] = snntorch_rate(sizes, batch, steps)
        base = rows["snntorch float"]
        name = "-".join(map(str, sizes))
        for label, value in rows.items():
            if value is None:
                print(f"{name:<16} {batch:>5} {label:<22} {'n/a':>12}")
                continue
            ratio = f"{value / base:6.2f}x snnTorch" if base else ""
            print(f"{name:<16} {batch:>5} {label:<22} {value:>12,.0f}  {ratio} ({unit})")


if __name__ == "__main__":
    main()
