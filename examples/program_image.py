"""Build a small program image by hand (no compiler needed) and input spikes for it.

    python examples/program_image.py [--out examples/out]

Writes OUT/demo_program.h5 (64 inputs -> 32 LIF -> 10 LIF, with a recurrent block and
a delayed block, for the loihi2 target) and OUT/demo_input.npy (4 samples x 50 steps).
Run it on both devices and compare:

    snn2hw run examples/out/demo_program.h5 --input examples/out/demo_input.npy \\
        --output examples/out/emu.npz --record spikes,u,v
    snn2hw run examples/out/demo_program.h5 --input examples/out/demo_input.npy \\
        --output examples/out/lava.npz --record spikes,u,v --device lava
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from snn2hw_emulator import image
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw import targets


def build(seed: int = 0) -> Program:
    rng = np.random.default_rng(seed)

    def group(name: str, n: int, du: int, dv: int, vth: int) -> NeuronGroup:
        return NeuronGroup(name, "lif", n, (n,), du, dv, vth, bias_mant=np.zeros(n, np.int32),
                           bias_exp=np.zeros(n, np.int32), u0=np.zeros(n, np.int32),
                           v0=np.zeros(n, np.int32))

    hidden, out = group("hidden", 32, 1024, 256, 300), group("out", 10, 2048, 512, 200)
    w_in = (rng.integers(-40, 120, (32, 64)) * (rng.random((32, 64)) < 0.5)).astype(np.int32)
    w_rec = (rng.integers(-100, 60, (32, 32)) * (rng.random((32, 32)) < 0.2)).astype(np.int32)
    w_out = rng.integers(-80, 160, (10, 32)).astype(np.int32)
    blocks = (
        SynapseBlock("w_in", "dense", "in", "hidden", w_in, weight_exp=0, num_weight_bits=8),
        SynapseBlock("w_rec", "sparse", "hidden", "hidden", w_rec, weight_exp=0),
        SynapseBlock("w_out", "delay_dense", "hidden", "out", w_out, weight_exp=-1,
                     num_weight_bits=7, delays=rng.integers(0, 4, (10, 32))),
    )
    t = targets.load("loihi2")
    return Program(t.name, t.sha256, t.toml, (Port("in", 64, (64,)),), (hidden, out), blocks,
                   (Core(0, 0, ("hidden",), ("w_in", "w_rec")), Core(1, 0, ("out",), ("w_out",))),
                   (OutputPort("out", "out"),), {"example": "examples/program_image.py"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    image.save(build(), args.out / "demo_program.h5")
    spikes = (np.random.default_rng(1).random((4, 50, 64)) < 0.15).astype(np.int8)
    np.save(args.out / "demo_input.npy", spikes)
    print(f"wrote {args.out / 'demo_program.h5'} and {args.out / 'demo_input.npy'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
