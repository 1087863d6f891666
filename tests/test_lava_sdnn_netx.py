"""lava-dl's published PilotNet SDNN networks run through netx itself and on the emulator
(a program built by tests/sdnn_netx.py with netx's integers): bit-identical in every
layer's payloads, sigma, act, residue and error at every step (17 steps of a drifting
graded image), and netx runs Lava's PySigmaDeltaModelFixed (docs/sigma_delta.md §1).
netx gets the input one step later: the program's identity input synapse adds that step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import sdnn_netx
from snn2hw import lava_env
from snn2hw_emulator import engine, kernels

pytestmark = [pytest.mark.lava, pytest.mark.slow]
DATA = Path(__file__).parent / "data" / "netx"
RUNNER = Path(__file__).with_name("sdnn_netx_runner.py")
STEPS = 16
VARS = (("spikes", "s_out"), *((v, v) for v in kernels.SD_STATE))


def _netx(path: Path, x: np.ndarray, tmp: Path) -> dict[str, np.ndarray]:
    np.save(tmp / "in.npy", x)
    shutil.copyfile(RUNNER, tmp / "run.py")
    lava_env.run_script(lava_env.netx_interpreter(),
                        [str(tmp / "run.py"), str(path), str(tmp / "in.npy"),
                         str(tmp / "out.npz")], timeout=1800, what=f"netx on '{path.name}'",
                        hint="Run `snn2hw lava install --netx`.")
    with np.load(tmp / "out.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name", ["pilotnet_sdnn_square", "pilotnet_sdnn_gts",
                                  "pilotnet_sdnn_slayer"])
def test_sdnn_file_runs_bit_identical_to_netx(name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="snn2hw-sdnn-") as tmp_name:
        tmp = Path(tmp_name)
        path = sdnn_netx.unpack(DATA / f"{name}.net.gz", tmp)
        program = sdnn_netx.build(path)
        x = sdnn_netx.frames(program, STEPS, seed=1)
        want = _netx(path, np.concatenate([np.zeros((1, x.shape[1]), np.int32), x]), tmp)
    got = engine.run(program, x[None], steps=STEPS + 1, record=[v for v, _ in VARS])
    models = {"delta": "PyDeltaModelFixed", "sigma_delta": "PySigmaDeltaModelFixed",
              "sigma": "PySigmaModelFixed"}
    compared = sent = 0
    for k, g in enumerate(program.groups):                   # netx block k = group k
        assert str(want[f"model/{k}"]) == models[g.model], (k, g.model)
        for var, key in VARS:
            if var != "spikes" and var not in kernels.STATE_VARS[g.model]:
                # Delta has a sigma Var it never writes (sdn/process.py:105): always 0
                assert not want.get(f"{key}/{k}", np.zeros(1)).any(), (k, key)
                continue
            ref = want[f"{key}/{k}"].astype(np.int64)
            mine = getattr(got, var)[g.name][0].astype(np.int64)
            bad = np.argwhere(ref != mine)
            assert not len(bad), (f"{g.name} {var}: {len(bad)} values differ; first at step "
                                  f"{bad[0][0] + 1}, neuron {bad[0][1]}: netx "
                                  f"{ref[tuple(bad[0])]}, emulator {mine[tuple(bad[0])]}")
            compared += 1
        sent += int((got.spikes[g.name] != 0).sum())
    assert compared == sum(1 + len(kernels.STATE_VARS[g.model]) for g in program.groups)
    assert sent > 1000 and all(int((got.spikes[g.name] != 0).sum()) for g in program.groups)
