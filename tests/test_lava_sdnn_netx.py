"""lava-dl's published PilotNet SDNN networks through the product. gts and slayer: the program
``netx.to_program`` builds from the file (unmapped, one layer per core on a loihi2 copy
with large cores: PilotNet's layers exceed a core) runs on the emulator bit-identical to
the ``netx`` device (lava-dl's own netx on Lava's fixed-point models,
``netx_run.run_program``) in every layer's payloads, sigma, act, residue and error at every
step (16 steps of a drifting graded image; the last layer is reached at step 10), and
netx ran Lava's PyDeltaModelFixed / PySigmaDeltaModelFixed / PySigmaModelFixed (the
device checks it: ``netx_run.check_models``). netx gets the input one step later (the
program's identity input synapse adds that step; the device aligns it). square: `snn2hw
verify` of the program compiled for loihi2 against netx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from snn2hw_emulator import engine, kernels
from test_netx_sdnn import frames, unpack

from snn2hw.backends import netx, netx_run, netx_sdnn
from snn2hw.cli import main
from snn2hw.targets import load

pytestmark = [pytest.mark.lava, pytest.mark.slow]
STEPS = 16
VARS = ("spikes", *kernels.SD_STATE)


@pytest.mark.parametrize("name", ["pilotnet_sdnn_gts", "pilotnet_sdnn_slayer"])
def test_sdnn_file_runs_bit_identical_to_netx(name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="snn2hw-sdnn-") as tmp_name:
        path = unpack(name, Path(tmp_name))
        program = netx.to_program(path, netx_sdnn.big_core(load("loihi2")))
        x = frames(program.ports[0].size, STEPS, seed=1)
        want = netx_run.run_program(program, {"input": x}, STEPS, VARS)
    got = engine.run(program, {"input": x}, steps=STEPS, record=list(VARS))
    compared = sent = 0
    for g in program.groups:                                 # netx block k = group k
        for var in ("spikes", *kernels.STATE_VARS[g.model]):
            ref = getattr(want, var)[g.name][0].astype(np.int64)
            mine = getattr(got, var)[g.name][0].astype(np.int64)
            bad = np.argwhere(ref != mine)
            assert ref.shape == mine.shape == (STEPS, g.size), (g.name, var)
            assert not len(bad), (f"{g.name} {var}: {len(bad)} values differ; first at step "
                                  f"{bad[0][0] + 1}, neuron {bad[0][1]}: netx "
                                  f"{ref[tuple(bad[0])]}, emulator {mine[tuple(bad[0])]}")
            compared += 1
        for var in ("u", "v", *(v for v in kernels.SD_STATE
                                if v not in kernels.STATE_VARS[g.model])):
            assert g.name not in getattr(want, var)      # nothing the model lacks
        sent += int((got.spikes[g.name] != 0).sum())
    assert compared == sum(1 + len(kernels.STATE_VARS[g.model]) for g in program.groups)
    assert sent > 1000 and all(int((got.spikes[g.name] != 0).sum()) for g in program.groups)


def test_cli_verify_of_the_compiled_square_file_is_bit_identical_to_netx(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`snn2hw verify FILE.net --device netx --against emulator`: compiled on the fly for
    loihi2 (10 cores: convolutions unrolled and split), every payload, sigma, act, residue
    and error of every group equal to netx's. 11 input steps + the program's latency of 5
    = 16 netx steps, as many as the other files get."""
    path = unpack("pilotnet_sdnn_square", tmp_path)
    np.save(tmp_path / "x.npy", frames(3 * 33 * 33, 11, seed=1))
    assert main(["verify", str(path), "--device", "netx", "--against", "emulator",
                 "--data", str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "compiled for loihi2: 10 core(s)" in out and "one step later" in out
    assert ("netx vs emulator: bit-identical over 1 samples x 16 steps, spikes, sigma, act, "
            "residue and error of 10 group(s)") in out
