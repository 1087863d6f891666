"""Lava backend: emit a standalone Lava program from a program image and run it.

``emit`` writes ``run.py`` (lava_runner.py, verbatim: imports only Lava and numpy)
and ``program.npz`` (the integer parameters and input spikes). ``run`` executes it
in the Lava interpreter chosen by :mod:`snn2hw.lava_env` and returns results shaped
like the emulator's (its ``Result``: ``spikes``/``u``/``v``: group -> (B, T, n)). ``run_many`` runs
several programs in one Lava process (Lava start-up dominates small runs).

Sigma-delta, delta and sigma groups become Lava ``SigmaDelta``, ``Delta`` and ``Sigma``
processes (``Py*ModelFixed`` under ``fixed_pt``; docs/sigma_delta.md) and record their
payloads as spikes and their state variables (kernels.STATE_VARS).

Lava has no codebook synapse memory: a codebook block is emitted as a ``Dense`` with its
looked-up full-scale matrix (``expanded_weights``; -1 -> 0), which Lava clips, truncates
and sign-mode-checks exactly as the emulator does the expanded matrix. A sparse block
travels as COO arrays (rows, cols, values; never a dense matrix) and becomes Lava's
``Sparse`` over the csr matrix built from them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from snn2hw_emulator.engine import RECORDABLE, check_inputs
from snn2hw_emulator.kernels import GRADED_MODELS, STATE_VARS
from snn2hw_emulator.program import Program, coo_entries, expanded_weights
from snn2hw_emulator.result import Result, recorded

from snn2hw import lava_env
from snn2hw.errors import UserInputError

RUNNER = Path(__file__).with_name("lava_runner.py")


def _records(model: str, var: str) -> bool:
    """Which variables a group has: spikes always, then kernels.STATE_VARS."""
    return var == "spikes" or var in STATE_VARS[model]


def _job(program: Program, inputs: Mapping[str, np.ndarray], steps: int,
         record: Sequence[str], j: int, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    for name, arr in inputs.items():
        arrays[f"j{j}/in/{name}"] = np.asarray(arr, dtype=np.int32)
    groups = []
    for g in program.groups:
        for key in ("bias_mant", "bias_exp", "u0", "v0"):
            arrays[f"j{j}/{g.name}/{key}"] = np.asarray(getattr(g, key), dtype=np.int32)
        groups.append(dict(name=g.name, model=g.model, shape=list(g.shape), du=g.du, dv=g.dv,
                           vth=g.vth, reset_interval=g.reset_interval,
                           reset_offset=g.reset_offset, act_mode=g.act_mode,
                           cum_error=bool(g.cum_error), spike_exp=g.spike_exp,
                           state_exp=g.state_exp))
    blocks = []
    for b in program.blocks:
        kind = "dense" if b.kind == "codebook" else b.kind   # Lava: expanded, as Dense
        if b.kind == "sparse":        # COO, never densified (an unrolled convolution)
            rows, cols, values = coo_entries(b.weights)
            arrays[f"j{j}/{b.name}/rows"] = rows.astype(np.int32)
            arrays[f"j{j}/{b.name}/cols"] = cols.astype(np.int32)
            arrays[f"j{j}/{b.name}/weights"] = values.astype(np.int32)
        else:
            weights = expanded_weights(b) if b.kind == "codebook" else b.weights
            arrays[f"j{j}/{b.name}/weights"] = np.asarray(weights, dtype=np.int32)
        if b.delays is not None:
            arrays[f"j{j}/{b.name}/delays"] = np.asarray(b.delays, dtype=np.int32)
        conv = {k: (list(v) if isinstance(v, tuple) else v) for k, v in (b.conv or {}).items()}
        blocks.append(dict(name=b.name, kind=kind, source=b.source, target=b.target,
                           weight_exp=b.weight_exp, num_weight_bits=b.num_weight_bits,
                           sign_mode=b.sign_mode, num_message_bits=b.num_message_bits,
                           conv=conv, source_shape=list(shapes[b.source]),
                           shape=[int(n) for n in np.shape(b.weights)]))
    ports = [dict(name=p.name, size=p.size, shape=list(p.shape)) for p in program.ports]
    batch = next(iter(inputs.values())).shape[0]
    return dict(ports=ports, groups=groups, blocks=blocks, steps=steps, batch=batch,
                record=[r for r in RECORDABLE if r in record or r == "spikes"])


def emit(runs: Sequence[tuple[Program, Any, int | None]], out_dir: str | Path,
         record: Sequence[str] = ("spikes",)) -> tuple[Path, list[dict[str, Any]]]:
    """Write run.py and program.npz for (program, inputs, steps) runs into out_dir;
    return the script's path and the job descriptions."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    jobs = []
    for j, (program, inputs, steps) in enumerate(runs):
        data, _, _ = check_inputs(program, inputs, None)  # same rules as the emulator
        t_in = next(iter(data.values())).shape[1]
        jobs.append(_job(program, data, t_in if steps is None else int(steps), record, j, arrays))
    arrays["jobs"] = np.array(json.dumps(jobs))
    np.savez_compressed(out / "program.npz", **arrays)
    shutil.copyfile(RUNNER, out / "run.py")
    return out / "run.py", jobs


def _collect(npz: Path, jobs: list[dict[str, Any]], programs: Sequence[Program]
             ) -> list[Result]:
    results = []
    with np.load(npz) as f:
        for j, (job, program) in enumerate(zip(jobs, programs)):
            rec: dict[str, dict[str, np.ndarray]] = {var: {} for var in job["record"]}
            for var in job["record"]:
                target = rec[var]
                for g in job["groups"]:
                    if not _records(g["model"], var):
                        continue
                    small = var == "spikes" and g["model"] not in GRADED_MODELS
                    target[g["name"]] = np.stack([f[f"j{j}/s{s}/{var}/{g['name']}"]
                                                  for s in range(job["batch"])]).astype(
                        np.int8 if small else np.int32)
            results.append(recorded(program, rec))
    return results


def run_many(runs: Sequence[tuple[Program, Any, int | None]], *,
             record: Sequence[str] = ("spikes",), hardware: bool = False,
             timeout: float = 1800) -> list[Result]:
    """Run several (program, inputs, steps) in one Lava process."""
    python = lava_env.interpreter()
    with tempfile.TemporaryDirectory(prefix="snn2hw-lava-") as tmp:
        script, jobs = emit(runs, tmp, record)
        result = Path(tmp) / "result.npz"
        args = [str(script), str(Path(tmp) / "program.npz"), str(result)]
        lava_env.run_script(python, args + (["--hardware"] if hardware else []),
                            timeout=timeout, what="the Lava program",
                            hint="Check the environment with `snn2hw lava status`.")
        return _collect(result, jobs, [r[0] for r in runs])


def run(program: Program, inputs: Any, *, steps: int | None = None,
        record: Sequence[str] = ("spikes",), hardware: bool = False) -> Result:
    """Run one program on Lava's fixed-point CPU models (one network per sample)."""
    if steps is not None and steps < 0:
        raise UserInputError(f"steps={steps} must be >= 0")
    return run_many([(program, inputs, steps)], record=record, hardware=hardware)[0]
