"""Where verify's shards run: spawned local processes (``--workers N``) or an existing
Dask distributed cluster (``--scheduler ADDRESS``, the ``dist`` extra).

Both take the same shard tasks (snn2hw.shard: plain picklable arguments in, exact sums
out) and give their results in shard order, so the report does not depend on where
they ran. Local workers start with "spawn" (not fork: numba and torch threads). On a
Dask cluster every worker needs snn2hw installed, and a ``.npy`` input is read by the
workers at the client's path (a shared file system; they refuse clearly otherwise).
A progress bar over shards is drawn on stderr when it is a terminal.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from snn2hw.errors import Snn2hwError, UserInputError

#: seconds to wait for the scheduler's answer before saying it is unreachable
CONNECT_TIMEOUT = 5.0


def progress(done: int, total: int) -> None:
    """The shard progress bar on stderr (drawn by callers only on a terminal)."""
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} shards")
    sys.stderr.write("\n" if done == total else "")
    sys.stderr.flush()


def collect(futures: dict[Any, int], completed: Any, cancel: Any,
            span: list[tuple[int, int]]) -> list:
    """The futures' results in shard order, as they complete (``completed``: an
    as_completed iterator); a failed shard cancels the others (``cancel``) and is one
    line naming it."""
    results: list = [None] * len(span)
    show = sys.stderr.isatty()
    for done, fut in enumerate(completed, 1):
        k = futures[fut]
        lo, hi = span[k]
        try:
            results[k] = fut.result()
        except Snn2hwError:                        # the shard's own one-line error
            cancel()
            raise
        except Exception as exc:  # noqa: BLE001 (any crash in a shard becomes one line)
            cancel()
            why = " ".join(str(exc).split()) or type(exc).__name__
            raise UserInputError(f"verify shard {k + 1} of {len(span)} (samples {lo}.."
                                 f"{hi - 1}) failed: {why}",
                                 hint="Run with --workers 1 to see it in one process."
                                 ) from None
        if show:
            progress(done, len(span))
    return results


def ranges(samples: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (lo, hi) ranges covering the samples, sizes differing by at
    most one (fewer when there are fewer samples than shards)."""
    k = max(1, min(shards, samples))
    cuts = [samples * i // k for i in range(k + 1)]
    return list(itertools.pairwise(cuts))


#: samples per shard at most: a shard's runs (every layer's spikes, samples x steps) live
#: in one worker's memory, so a large data set is cut into more shards than workers
SHARD_MAX = 256


def spans(samples: int, workers: int) -> list[tuple[int, int]]:
    """The shards for ``workers`` workers: one each, more where a shard would exceed
    SHARD_MAX samples."""
    return ranges(samples, max(workers, -(-samples // SHARD_MAX)))


def run(fn: Any, tasks: Callable[[list[tuple[int, int]]], list[tuple]], samples: int,
        workers: int, scheduler: str | None = None, shared: tuple[int, ...] = ()) -> list:
    """``fn(*task)`` for each of ``tasks(spans)``, on ``workers`` spawned processes or on
    the Dask cluster at ``scheduler`` (then at least one shard per worker thread); results
    in shard order. ``shared``: positions of the arguments that are the same object in
    every task (sent to each Dask worker once)."""
    if scheduler is not None:
        return _run_dask(scheduler, fn, tasks, samples, workers, shared)
    span = spans(samples, workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_quiet) as pool:
        futures = {pool.submit(fn, *task): k for k, task in enumerate(tasks(span))}

        def cancel() -> None:
            for f in futures:
                f.cancel()
        return collect(futures, as_completed(futures), cancel, span)


def _quiet() -> None:
    """A local worker's start: its runs draw no progress bars of their own."""
    sys.stderr = _NoTTY(sys.stderr)


class _NoTTY:
    """A worker's stderr: the same stream, but no progress bars of its own."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


# --------------------------------------------------------------------------- Dask


_HINT = ("Start one (`dask scheduler`, then `dask worker ADDRESS` on each machine) and pass "
         "the address it prints (tcp://host:8786), or use --workers N for local processes.")


def client(address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a one-line error (exit 2) when
    dask is not installed, the address is malformed or nothing answers in
    CONNECT_TIMEOUT seconds."""
    try:
        import distributed
    except ImportError:
        raise UserInputError("--scheduler needs Dask distributed, which is not installed",
                             hint="pip install 'snn2hw[dist]' (make setup installs it), or "
                                  "use --workers N for local processes.") from None
    _probe(address)
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except OSError as exc:                         # it answered, then failed: not Dask?
        raise UserInputError(f"no Dask scheduler at '{address}' ({_why(exc)})",
                             hint=_HINT) from None


def _probe(address: str) -> None:
    """Connect once and close: a failed Client would linger and stall the exit."""
    import asyncio

    from distributed.comm import connect

    async def probe() -> None:
        comm = await connect(address, timeout=CONNECT_TIMEOUT)
        await comm.close()
    try:
        asyncio.run(probe())
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"--scheduler '{address}' is not a scheduler address "
                             f"({_why(exc)})", hint=_HINT) from None
    except OSError:
        raise UserInputError(f"cannot reach the Dask scheduler at '{address}': nothing "
                             f"answered within {CONNECT_TIMEOUT:g} s", hint=_HINT) from None


def _why(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _run_dask(address: str, fn: Any, tasks: Callable[[list[tuple[int, int]]], list[tuple]],
              samples: int, workers: int, shared: tuple[int, ...]) -> list:
    import distributed

    with client(address) as c:
        threads = sum(c.nthreads().values())
        if not threads:
            raise UserInputError(f"the Dask scheduler at '{address}' has no workers",
                                 hint="Start workers (`dask worker ADDRESS`) and retry.")
        span = spans(samples, max(workers, threads))
        todo = tasks(span)
        # the arguments every task has (the program, the graph) go to each worker once
        once = {k: c.scatter([todo[0][k]], broadcast=True, hash=False)[0] for k in shared}
        futures = {c.submit(fn, *[once[i] if i in once else _sent(c, a)
                                  for i, a in enumerate(task)], pure=False): k
                   for k, task in enumerate(todo)}
        return collect(futures, distributed.as_completed(futures, loop=c.loop),
                       lambda: c.cancel(list(futures)), span)


def _sent(c: Any, arg: Any) -> Any:
    """A shard's own samples go to the cluster as data of their own, not in the task."""
    import numpy as np

    return c.scatter([arg], hash=False)[0] if isinstance(arg, np.ndarray) else arg


__all__ = ["CONNECT_TIMEOUT", "SHARD_MAX", "client", "collect", "progress", "ranges", "run",
           "spans"]
