"""Where research jobs run: a local process pool (the default) or a Ray cluster, behind one interface.

A *job* is one call `fn(item)` of a picklable function (an optimiser trial, one seed of an agent
training sweep). Every job has its own seed: before the call the worker seeds `random`, NumPy and
(when it is loaded) torch with it, so a job's result depends on its item and seed only, never on
which worker or node ran it, nor in what order. Results stream back as jobs finish (`JobResult`,
with the job's index, the node that ran it and the seconds it computed); callers put them back in
order, so a search gives the same result on every backend and any number of workers.

- `LocalBackend(workers)`: a process pool (`workers` = 1: in this process, no pool); a job whose
  worker process dies is run again on a new pool.
- `RayBackend` (bot/research/ray_backend.py, loaded only when asked for, so plain installs and
  the desktop app never import ray): each job is a Ray task, retried when its worker or node is lost.
- `make_backend("local" | "ray", workers=, address=)` picks one; `map_jobs(fn, items, ...)` is the
  one-call API (e.g. a seed / variant sweep of agent training): results in item order.

Life cycle: `open(fn)` ships `fn` to the workers once, `map(items, seeds)` runs jobs (any number
of times), `done()` ends the run, `close()` releases the backend (a Ray runtime it started).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import BotError, ConfigError
from bot.research.jobs import JobResult, job_seed, run_seeded

if TYPE_CHECKING:      # the pool's modules load when a pool starts: a backtest never needs them (CLI start-up)
    from concurrent.futures import ProcessPoolExecutor

__all__ = ["BACKENDS", "JobResult", "Backend", "LocalBackend", "make_backend", "map_jobs", "job_seed",
           "run_seeded"]

BACKENDS = ("local", "ray")


class Backend(Protocol):
    """What the optimiser (and any sweep) needs from a place to run jobs."""

    name: str

    @property
    def workers(self) -> int: ...

    def open(self, fn: Callable[[Any], Any]) -> None: ...

    def map(self, items: Sequence[Any], seeds: Sequence[int]) -> Iterator[JobResult]: ...

    def done(self) -> None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------------------
# the local pool: the function lives in each worker process, set once by the pool initializer
_WORKER_FN: Callable[[Any], Any] | None = None


def _init_worker(fn: Callable[[Any], Any]) -> None:
    global _WORKER_FN
    _WORKER_FN = fn


def _timed(fn: Callable[[Any], Any], index: int, item: Any, seed: int) -> JobResult:
    t0 = time.perf_counter()
    value = run_seeded(fn, item, seed)
    return JobResult(index, value, "local", time.perf_counter() - t0)


def _pool_job(job: tuple[int, Any, int]) -> JobResult:
    assert _WORKER_FN is not None, "worker started without a function"
    return _timed(_WORKER_FN, *job)


class LocalBackend:
    """Jobs on a process pool of `workers` processes on this machine (1: in process). When a worker
    process dies mid-job (killed, out of memory) the pool is rebuilt and the unfinished jobs run
    again, up to `retries` times, as Ray does for its tasks."""

    name = "local"

    def __init__(self, workers: int = 1, *, retries: int = 3) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self._workers = int(workers)
        self.retries = int(retries)
        self._fn: Callable[[Any], Any] | None = None
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def open(self, fn: Callable[[Any], Any]) -> None:
        self.done()
        self._fn = fn
        if self._workers > 1:
            self._start()

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context(),
                                         initializer=_init_worker, initargs=(self._fn,))

    def map(self, items: Sequence[Any], seeds: Sequence[int]) -> Iterator[JobResult]:
        if self._fn is None:
            raise RuntimeError("open(fn) the backend before map()")
        jobs = {i: (i, item, seed) for i, (item, seed) in enumerate(zip(items, seeds, strict=True))}
        if self._workers == 1:
            for job in jobs.values():
                yield _timed(self._fn, *job)
            return
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        lost = 0
        while jobs:
            if self._pool is None:
                self._start()
            assert self._pool is not None
            futures = [self._pool.submit(_pool_job, job) for job in jobs.values()]
            try:
                for f in as_completed(futures):
                    r = f.result()
                    del jobs[r.index]
                    yield r
            except BrokenProcessPool as exc:            # a worker died: its job and the others in flight
                lost += 1
                self._stop()
                if lost > self.retries:
                    raise BotError(f"a local worker process was lost {lost} times; the checkpoint keeps the "
                                   "work done so far") from exc
            finally:
                for f in futures:
                    f.cancel()

    def _stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:              # stop running jobs now, as Pool.terminate did
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=10)

    def done(self) -> None:
        self._stop()
        self._fn = None

    def close(self) -> None:
        self.done()


def make_backend(name: str = "local", *, workers: int = 1, address: str | None = None,
                 retries: int = 3) -> Backend:
    """The backend called `name`: "local" (a pool of `workers`) or "ray" (`address`: None starts
    Ray on this machine with `workers` CPUs, "auto" joins the cluster started here with `ray start`, "host:port" or
    "ray://host:10001" joins that one; a lost worker's job is retried up to `retries` times)."""
    if name == "local":
        if address:
            raise ConfigError("--ray-address needs --backend ray")
        return LocalBackend(workers, retries=retries)
    if name == "ray":
        from bot.research.ray_backend import RayBackend
        return RayBackend(address=address, retries=retries, num_cpus=None if address else workers)
    raise ConfigError(f"backend {name!r} is not known; allowed: {', '.join(BACKENDS)}")


def map_jobs(fn: Callable[[Any], Any], items: Sequence[Any], *, backend: Backend | str = "local",
             workers: int | None = None, address: str | None = None, seed: int = 0,
             seeds: Sequence[int] | None = None, progress: bool = True, desc: str = "jobs") -> list[JobResult]:
    """Run `fn(item)` for every item (each with its own seed: `seeds`, else `job_seed(seed, index)`)
    on `backend` (a Backend, or its name) with a progress bar; the results in item order."""
    from tqdm import tqdm

    own = isinstance(backend, str)
    runner = make_backend(backend, workers=workers or os.cpu_count() or 1, address=address) \
        if isinstance(backend, str) else backend
    seeds = list(seeds) if seeds is not None else [job_seed(seed, i) for i in range(len(items))]
    out: list[JobResult | None] = [None] * len(items)
    try:
        runner.open(fn)
        with tqdm(total=len(items), desc=desc, unit="job", disable=not progress) as bar:
            for r in runner.map(items, seeds):
                out[r.index] = r
                bar.update(1)
    finally:
        runner.done()
        if own:
            runner.close()
    return [r for r in out if r is not None]
