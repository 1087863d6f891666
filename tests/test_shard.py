"""`snn2hw verify --workers N`: the samples in shards over processes, the same report as one
process, bit for bit; workers return sums, not spikes."""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
from pathlib import Path

import nir
import numpy as np
import pytest

from snn2hw import checker, compiler, devices, exact, nirio, shard, traces, verify
from snn2hw.cli import main
from snn2hw.errors import UserInputError


def _lif(n: int) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def _files(tmp_path: Path, samples: int = 9) -> tuple[Path, Path, Path]:
    """A two-layer 20-40-5 LIF net, binary input spikes (samples, 12, 20) and labels."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([20])), "fc1": nir.Linear(rng.normal(size=(40, 20))),
             "lif1": _lif(40), "fc2": nir.Linear(rng.normal(size=(5, 40))), "lif2": _lif(5),
             "output": nir.Output(np.array([5]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    graph = checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-4})
    nirio.write(graph, tmp_path / "model.nir")
    np.save(tmp_path / "x.npy", (rng.random((samples, 12, 20)) < 0.3).astype(np.int8))
    np.save(tmp_path / "y.npy", rng.integers(0, 5, samples))
    return tmp_path / "model.nir", tmp_path / "x.npy", tmp_path / "y.npy"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_two_workers_give_the_same_report_as_one(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    model, x, y = _files(tmp_path)
    graph = nirio.read(model)
    program = compiler.compile(graph, compiler.Options(weight_bits=3)).program
    data, labels = verify.load_data(x, y)
    one, _ = verify.verify(graph, program, data, labels)
    # what the workers run, here in-process, on 3 shards, reduced
    parts = (dict(graph.nodes), graph.edges, dict(graph.metadata))
    three = shard.verify_report([shard._verify_task(parts, program, shard.npy_source(x), lo,
                                                    hi, labels[lo:hi], "emulator", None)
                                 for lo, hi in shard.ranges(len(data), 3)], "emulator")
    assert dataclasses.asdict(three) == dataclasses.asdict(one)
    assert three.table() == one.table()
    # 3-bit weights: layers disagree, so the sums that are compared are not all trivial
    assert all(la.identical_fraction < 1 for la in one.layers)
    assert 0 < one.layers[0].count_correlation < 1 and one.cost
    # the command line, the .npy mmapped in 2 worker processes: the same printed figures
    args = ("verify", str(model), "--data", str(x), "--labels", str(y), "--weight-bits", "3")
    code1, out1, _ = _cli(capsys, *args)
    code2, out2, _ = _cli(capsys, *args, "--workers", "2")      # 2 processes
    assert code1 == code2 == 0
    assert out2 == out1 and "identical" in out1


class _Perturbed(devices.EmulatorDevice):
    """The emulator running the program with one weight from input 0 changed."""

    name = "emulator-perturbed"

    def _run(self, inputs: object, steps: object, record: object,
             progress: object) -> object:
        program = self.program
        block = program.blocks[0]
        w = np.array(block.weights)
        w[..., 0] = np.where(w[..., 0] > 0, -w[..., 0], np.abs(w[..., 0]).max())
        self.program = dataclasses.replace(
            program, blocks=(dataclasses.replace(block, weights=w), *program.blocks[1:]))
        try:
            return super()._run(inputs, steps, record, progress)
        finally:
            self.program = program


def test_first_divergence_keeps_its_global_sample_index(tmp_path: Path) -> None:
    model, x, _ = _files(tmp_path, samples=10)
    program = compiler.compile(nirio.read(model), compiler.Options()).program
    data = np.load(x)
    data[:6, :, 0] = 0            # input 0 (the perturbed weights) silent in samples 0..5
    labels = np.arange(10) % 5
    devices.register("emulator-perturbed", _Perturbed)
    try:
        whole = verify.compare_devices(program, data, labels, device="emulator-perturbed",
                                       against="emulator")
        parts = [shard.compare_sums(program, data[lo:hi], labels[lo:hi],
                                    "emulator-perturbed", "emulator", lo)
                 for lo, hi in shard.ranges(10, 3)]
    finally:
        devices._REGISTRY.pop("emulator-perturbed")
    merged = shard.compare_report(parts, program, "emulator-perturbed", "emulator")
    assert whole.divergence is not None and whole.divergence.sample >= 6
    assert str(merged.divergence) == str(whole.divergence)
    assert merged.table() == whole.table()
    assert sum(p["divergence"] is not None for p in parts) >= 1


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "two"])
def test_bad_workers_value_is_one_line_exit_2(tmp_path: Path, value: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model, x, _ = _files(tmp_path, samples=2)
    code, out, err = _cli(capsys, "verify", str(model), "--data", str(x), "--workers", value)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--workers" in err


def test_workers_return_sums_not_spikes(tmp_path: Path) -> None:
    model, x, _ = _files(tmp_path, samples=40)
    graph = nirio.read(model)
    program = compiler.compile(graph, compiler.Options()).program
    data = np.load(x)
    sizes = []
    for b in (4, 40):
        rep, traces = verify.verify(graph, program, data[:b])
        from snn2hw import reference
        from snn2hw.backends.image import io_map

        ref = reference.simulate(graph, data[:b].astype(float), record=("spikes",))
        sums = shard.verify_sums(graph, ref, traces.runs["device"], io_map(program), data[:b],
                                 None, None, "emulator")
        assert shard.verify_report([sums], "emulator") == rep
        sizes.append(len(pickle.dumps(sums)))
        spikes = sum(s.nbytes for s in traces.runs["device"].spikes.values())
    # ten times the samples: about the same size (a few more float partials at most)
    assert sizes[1] < sizes[0] + 600 and sizes[1] < spikes / 4
    # a .npy input reaches a worker as its path, memory-mapped there
    assert shard._npy_path(str(x), data) == str(x)
    assert isinstance(shard._shard_data(shard.npy_source(x), 3, 7), np.memmap)


def test_a_failing_shard_is_one_line_naming_it(tmp_path: Path) -> None:
    model, x, _ = _files(tmp_path, samples=4)
    graph = nirio.read(model)
    program = compiler.compile(graph, compiler.Options()).program
    data = np.load(x)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(x.read_bytes()[:-10])      # its header is fine; the workers cannot map it
    with pytest.raises(UserInputError, match=r"verify shard \d of 2 \(samples \d\.\.\d\) "
                                             r"failed") as exc:
        shard.verify(graph, program, data, workers=2, path=bad)
    assert "\n" not in str(exc.value)


def test_exact_sums_do_not_depend_on_the_split() -> None:
    rng = np.random.default_rng(5)
    v = rng.normal(size=1000) * 10.0 ** rng.integers(-8, 8, 1000)
    whole = exact.total([shard.exact_sum(v)])
    assert whole == exact.total([shard.exact_sum(v[:317]), shard.exact_sum(v[317:])])
    assert whole == math.fsum(v)                 # the correctly rounded sum


def test_figures_with_workers_are_those_of_one_process(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--png and --report with 2 workers: sample 0's rasters come from the shard that holds
    it, the cost curves from exact per-step sums; every file equals one process's."""
    model, x, y = _files(tmp_path, samples=7)
    for n in ("1", "2"):
        code, out, _ = _cli(capsys, "verify", str(model), "--data", str(x), "--labels", str(y),
                            "--workers", n, "--png", str(tmp_path / f"v{n}.png"), "--report",
                            str(tmp_path / f"r{n}"))
        assert code == 0 and f"wrote {tmp_path / f'v{n}.png'}" in out
    assert (tmp_path / "v1.png").read_bytes() == (tmp_path / "v2.png").read_bytes()
    names = sorted(p.name for p in (tmp_path / "r1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "r2").iterdir()) and "cost.png" in names
    for name in names:
        one, two = ((tmp_path / r / name).read_bytes() for r in ("r1", "r2"))
        if name == "report.html":          # the compile report's timings vary run to run
            one, two = (re.sub(rb"timings_s.*?}", b"", h, flags=re.DOTALL) for h in (one, two))
        assert one == two, name
    # what they draw, reduced from 3 shards in-process: equal to one process's, not empty
    graph = nirio.read(model)
    program = compiler.compile(graph, compiler.Options()).program
    data = np.load(x)
    _, one = verify.verify(graph, program, data)
    parts = (dict(graph.nodes), graph.edges, dict(graph.metadata))
    three = traces.reduce([shard._verify_task(parts, program, shard.npy_source(x), lo, hi,
                                              None, "emulator", None, True)["figures"]
                           for lo, hi in shard.ranges(len(data), 3)])
    assert one.device.keys() == three.device.keys() and one.reference.keys()
    for pop in one.device:
        np.testing.assert_array_equal(one.device[pop], three.device[pop])
        np.testing.assert_array_equal(one.reference[pop], three.reference[pop])
    np.testing.assert_array_equal(one.energy_step_pj, three.energy_step_pj)
    np.testing.assert_array_equal(one.latency_step_ns, three.latency_step_ns)
    np.testing.assert_array_equal(one.core_spikes, three.core_spikes)
    assert sum(int(s.sum()) for s in one.device.values()) > 0 and one.core_spikes.sum() > 0
    # only the shard that holds sample 0 sends rasters
    later = shard._verify_task(parts, program, shard.npy_source(x), 3, 7, None, "emulator",
                               None, True)["figures"]
    assert later["first"] is None and later["cost"] is not None
