"""`snn2hw verify --scheduler ADDRESS`: the shards on a Dask distributed cluster (here a
LocalCluster of 2 worker processes, 1 thread each, started by the test), the same report
and figures as one process, bit for bit; an unreachable scheduler is one line, exit 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_shard import _cli, _files

from snn2hw import dist, shard
from snn2hw.errors import UserInputError

distributed = pytest.importorskip("distributed", reason="the dist extra (make setup has it)")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_scheduler_report_and_figures_equal_one_process(
        scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, x, y = _files(tmp_path, samples=9)
    args = ("verify", str(model), "--data", str(x), "--labels", str(y), "--weight-bits", "3")
    code1, one, _ = _cli(capsys, *args, "--png", str(tmp_path / "one.png"))
    code2, two, err = _cli(capsys, *args, "--scheduler", scheduler,
                           "--png", str(tmp_path / "two.png"))
    assert code1 == code2 == 0 and err == "", err          # no bar: stderr is not a terminal
    assert two.replace("two.png", "one.png") == one and "identical" in one
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()


def test_shards_run_on_the_cluster_workers(scheduler: str, tmp_path: Path) -> None:
    """Every shard ran in a worker process (2 threads: 2 shards), not in the client."""
    _, x, _ = _files(tmp_path, samples=5)
    src = shard.npy_source(x)

    def tasks(span: list[tuple[int, int]]) -> list[tuple]:
        return [(src, lo, hi) for lo, hi in span]
    got = dist.run(_where, tasks, 5, 1, scheduler)
    assert [g[1] for g in got] == [2, 3]                  # samples 0..1, 2..4, in order
    assert {g[0] for g in got} <= set(_worker_pids(scheduler)) and len(got) == 2


def _where(source: tuple, lo: int, hi: int) -> tuple[int, int]:
    import os

    return os.getpid(), len(shard._shard_data(source, lo, hi))


def _worker_pids(address: str) -> list[int]:
    import os

    with dist.client(address) as c:
        return list(c.run(os.getpid).values())


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    model, x, _ = _files(tmp_path, samples=2)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))                  # a port nothing listens on
    address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    code, _, err = _cli(capsys, "verify", str(model), "--data", str(x), "--scheduler", address,
                          "--png", str(tmp_path / "v.png"))
    assert code == 2 and err.count("\n") == 1
    assert address in err and "within 1 s" in err and "dask scheduler" in err
    assert not (tmp_path / "v.png").exists()
    code, _, err = _cli(capsys, "verify", str(model), "--data", str(x), "--scheduler", "tcp:/x")
    assert code == 2 and err.count("\n") == 1 and "not a scheduler address" in err


def test_a_worker_that_sees_another_file_refuses(tmp_path: Path) -> None:
    """A .npy path the worker cannot read, or reads as another array: one line saying what
    --scheduler assumes (a shared file system)."""
    _, x, _ = _files(tmp_path, samples=3)
    kind, path, shape, dtype = shard.npy_source(x)
    with pytest.raises(UserInputError, match="cannot read the input .*shared file system"):
        shard._shard_data((kind, path + ".gone", shape, dtype), 0, 1)
    np.save(x, np.zeros((4, 12, 20), np.int8))
    with pytest.raises(UserInputError, match=r"reads a different .*\(4, 12, 20\).*\(3, 12, 20\)"):
        shard._shard_data((kind, path, shape, dtype), 0, 1)
    assert shard._shard_data(shard.npy_source(x), 1, 3).shape == (2, 12, 20)


def test_an_npz_input_is_sent_shard_by_shard(scheduler: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Inputs the workers cannot map (.npz) travel with their shards (3 here, over the
    cluster's 2 workers): the same report."""
    model, x, y = _files(tmp_path, samples=6)
    np.savez(tmp_path / "d.npz", spikes=np.load(x), labels=np.load(y))
    args = ("verify", str(model), "--data", str(tmp_path / "d.npz"))
    code1, one, _ = _cli(capsys, *args)
    code2, two, _ = _cli(capsys, *args, "--scheduler", scheduler, "--workers", "3")
    assert code1 == code2 == 0 and one == two and "accuracy" in one
