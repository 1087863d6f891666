"""Emulator speed against snnTorch, XyloSim and Lava's fixed-point CPU models, as ratios.

    python bench/bench_emulator.py [--quick] [--repeat N] [--gpu-only]

Feed-forward LIF nets with int8 weights, input spike rate 0.1, T=100 (the table of
issue 15), the emulator through the device interface with its cost model, as
``snn2hw run`` uses it: its default (time-batched) mode, the per-step mode, and at batch 1
the event mode. Beside it in the same process: snnTorch (float, the same layer sizes),
XyloSim (SynSense's C++ simulator, ``pip install xylosim==0.1.3``: the same weights,
inputs, thresholds and decays as bitshifts, on Xylo's own IAF arithmetic) at batch 1
when it is installed, and the emulator on CUDA (``--accelerator cuda``) when torch sees
a GPU, with a batch-4096 row in synaptic events per second (the cost model's count).

The measurements are interleaved: every engine of a row once, then again, N times
(default 5), at batch 256 each after a short rest (worker threads of the previous call
stop spinning), each timed call right after an untimed one of the same engine (its
steady state, as when a data set runs batch after batch), and each engine's best time
counts, so that a shared machine's load falls on all of them
alike; ratios come from this one run. numba's loops and torch are loaded
first (as in a long-running process). Lava's rate excludes its start-up: two runs of
different length.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from itertools import pairwise

import numpy as np
from snn2hw_emulator import engine
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw import targets
from snn2hw.backends.netx_sdnn import big_core

STEPS = 100
#: seconds of rest before each timed call at batch 256: BLAS and OpenMP worker threads
#: spin a while after a call and would slow whichever engine is timed next (at batch 1,
#: where runs take milliseconds, a rest would instead let the cores idle down)
PAUSE = 0.3
#: the same network in every engine: int8 weights (int8 * 2 with weight_exp -1 on Loihi),
#: u decay 1/4 and v decay 1/16 per step (XyloSim: bitshifts 2 and 4), threshold 64 (in
#: weight units)
DU, DV, VTH = 1024, 256, 64


def ff_program(sizes: tuple[int, ...], seed: int = 0) -> Program:
    groups, blocks, prev = [], [], "in"
    for k, (w, (a, b)) in enumerate(zip(weights(sizes, seed), pairwise(sizes))):
        name = f"L{k}"
        groups.append(NeuronGroup(name, "lif", b, (b,), DU, DV, VTH, np.zeros(b, np.int32),
                                  np.zeros(b, np.int32), np.zeros(b, np.int32),
                                  np.zeros(b, np.int32)))
        blocks.append(SynapseBlock(f"W{k}", "dense", prev, name, w.astype(np.int32) * 2,
                                   weight_exp=-1))
        prev = name
    # one layer per core, as the table measured it: a 784x1024 layer exceeds a
    # loihi2 core's synaptic memory, so the cores are big_core's (loihi2's arithmetic and
    # cost table, limits that hold any layer); the image checks at load would refuse it
    t = big_core(targets.load("loihi2"))
    cores = tuple(Core(i, 0, (g.name,), (blocks[i].name,)) for i, g in enumerate(groups))
    return Program(t.name, t.sha256, t.toml, (Port("in", sizes[0], (sizes[0],)),), tuple(groups),
                   tuple(blocks), cores, (OutputPort("out", groups[-1].name),))


def weights(sizes: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """int8 weights (n_out, n_in) of each layer."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, (b, a)) for a, b in pairwise(sizes)]


def spikes(n: int, batch: int, steps: int) -> np.ndarray:
    return (np.random.default_rng(1).random((batch, steps, n)) < 0.1).astype(np.int8)


def interleaved(fns: dict[str, Callable[[], object] | None], units: float, repeat: int,
                pause: float = 0.0) -> dict[str, float | None]:
    """units / best time of each function, timed in turn ``repeat`` times, each after
    ``pause`` seconds of rest and one untimed call (the engine's steady state, as in a
    data set's run of batch after batch: the first call after another engine's pays for
    that engine's traces, e.g. oneDNN's int8 kernels after the step mode's float ones)."""
    todo = {k: f for k, f in fns.items() if f is not None}
    best = dict.fromkeys(todo, float("inf"))
    for _ in range(repeat):
        for label, fn in todo.items():
            time.sleep(pause)
            fn()
            t0 = time.perf_counter()
            fn()
            best[label] = min(best[label], time.perf_counter() - t0)
    return {k: (units / best[k] if k in best else None) for k in fns}


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


def snntorch_run(sizes: tuple[int, ...], x: np.ndarray, device: str = "cpu"
                 ) -> Callable[[], None] | None:
    try:
        import snntorch as snn
        import snntorch.utils
        import torch
    except ImportError:
        return None
    layers = []
    for a, b in pairwise(sizes):
        layers += [torch.nn.Linear(a, b), snn.Leaky(beta=0.9, init_hidden=True)]
    net = torch.nn.Sequential(*layers).to(device)
    xt = torch.from_numpy(x.astype(np.float32)).to(device)

    def go() -> None:
        snntorch.utils.reset(net)
        with torch.no_grad():
            for t in range(xt.shape[1]):
                net(xt[:, t])
        if device != "cpu":
            torch.cuda.synchronize()
    return go


def xylosim_run(sizes: tuple[int, ...], x: np.ndarray) -> Callable[[], None] | None:
    """XyloSim (xylosim.v2.XyloLayer) on the same net: input -> hidden (Xylo's reservoir
    with no recurrent weights) -> readout, the bench's int8 weights, threshold VTH,
    synaptic and membrane decays as bitshifts (u: 1/4 per step -> 2, v: 1/16 -> 4); one
    sample, its input converted to XyloSim's list form outside the timing."""
    if len(sizes) != 3 or x.shape[0] != 1:
        return None
    try:
        from xylosim.v2 import XyloLayer, XyloSynapse
    except ImportError:
        return None
    w_in, w_out = weights(sizes)
    n_in, n_hid, n_out = sizes
    syn_in = [[XyloSynapse(j, 0, int(w_in[j, i])) for j in range(n_hid) if w_in[j, i]]
              for i in range(n_in)]
    syn_out = [[XyloSynapse(k, 0, int(w_out[k, j])) for k in range(n_out) if w_out[k, j]]
               for j in range(n_hid)]
    layer = XyloLayer(syn_in, [[] for _ in range(n_hid)], syn_out, [[] for _ in range(n_hid)],
                      [VTH] * n_hid, [VTH] * n_out, False, [0] * n_hid, [0] * n_out, 0, 0, 0,
                      [4] * n_hid, [4] * n_out, [[2]] * n_hid, [[2]] * n_out, "bench")
    steps = x[0].astype(np.uint8).tolist()

    def go() -> None:
        layer.reset_all()
        layer.evolve(steps)
    go.keep = (syn_in, syn_out, layer)     # XyloLayer holds raw pointers to the synapses
    return go


def cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def device_run(program: Program, x: np.ndarray, mode: str, accelerator: str = "cpu"
               ) -> Callable[[], object]:
    """Through the device interface, as a user runs it (cost model included)."""
    from snn2hw import devices

    dev = devices.EmulatorDevice(mode, accelerator).load(program)
    return lambda: dev.run(x)


def rows(sizes: tuple[int, ...], batch: int, args: argparse.Namespace) -> dict:
    program = ff_program(sizes)
    x = spikes(sizes[0], batch, STEPS)
    fns: dict[str, Callable[[], object] | None] = {
        "emulator (batch)": device_run(program, x, "batch"),
        "emulator step mode": device_run(program, x, "step")}
    if batch == 1:
        fns["emulator event mode"] = device_run(program, x, "event")
        fns["emulator, no cost"] = lambda: engine.run(program, x, cost=False)
        fns["xylosim (C++)"] = xylosim_run(sizes, x)
    if cuda():
        fns["emulator cuda"] = device_run(program, x, "batch", "cuda")
    fns["snntorch float"] = snntorch_run(sizes, x)
    out = interleaved(fns, batch * STEPS, args.repeat, PAUSE if batch > 1 else 0.0)
    if batch == 1 and not args.quick:
        out["lava fixed_pt"] = lava_rate(program, STEPS)
    return out


def gpu_events(args: argparse.Namespace) -> None:
    """784-1024-1024-10 at batch 4096 on CUDA: synaptic events (the cost model's synops)
    per second, and sample-steps per second beside snnTorch on the same GPU."""
    import torch

    sizes, batch = (784, 1024, 1024, 10), 4096
    program = ff_program(sizes)
    x = spikes(sizes[0], batch, STEPS)
    run = device_run(program, x, "batch", "cuda")
    events = int(run().cost.counts["synops"].sum())
    fns = {"emulator cuda": run, "snntorch float cuda": snntorch_run(sizes, x, "cuda")}
    torch.cuda.synchronize()
    rates = interleaved(fns, batch * STEPS, max(2, args.repeat // 2))
    em, base = rates["emulator cuda"], rates["snntorch float cuda"]
    print(f"{'784-1024-1024-10':<16} {batch:>5} {'emulator cuda':<22} {em:>12,.0f}  "
          + (f"{em / base:6.2f}x snnTorch cuda " if base else "")
          + f"(sample-steps/s; {events * em / (batch * STEPS):.3g} synaptic events/s, "
          f"{events:,} events per run)")
    if base:
        print(f"{'784-1024-1024-10':<16} {batch:>5} {'snntorch float cuda':<22} {base:>12,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip Lava and the 784-1024-1024-10 net")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--gpu-only", action="store_true",
                        help="only the CUDA rows (bench/gpu_check.sh)")
    args = parser.parse_args()
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
    if args.gpu_only:
        if not cuda():
            raise SystemExit("no CUDA device: the GPU rows need one")
        gpu_events(args)
        return
    for sizes, batch in cases:
        table = rows(sizes, batch, args)
        _print(sizes, batch, table)
    if cuda():
        gpu_events(args)


def _print(sizes: tuple[int, ...], batch: int, table: dict) -> None:
    unit = "steps/s" if batch == 1 else "sample-steps/s"
    base = table.get("snntorch float")
    xylo = table.get("xylosim (C++)")
    name = "-".join(map(str, sizes))
    for label, value in table.items():
        if value is None:
            print(f"{name:<16} {batch:>5} {label:<22} {'n/a':>12}")
            continue
        ratio = f"{value / base:6.2f}x snnTorch" if base else ""
        if xylo and label != "xylosim (C++)":
            ratio += f", {value / xylo:.2f}x XyloSim"
        print(f"{name:<16} {batch:>5} {label:<22} {value:>12,.0f}  {ratio} ({unit})")


if __name__ == "__main__":
    main()
