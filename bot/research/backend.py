"""Where research jobs run: a local process pool (the default) or a Ray cluster, behind one interface.

A *job* is one call `fn(item)` of a picklable function (an optimiser trial, one seed of an agent
training sweep). Every job has its own seed: before the call the worker seeds `random`, NumPy and
(when it is loaded) torch with it, so a job's result depends on its item and seed only, never on
which worker or node ran it, nor in what order. Results stream back as jobs finish (`JobResult`,
with the job's index, the node that ran it and the seconds it computed); callers put them back in
order, so a search gives the same result on every backend and any number of workers.

- `LocalBackend(workers)`: a multiprocessing pool (`workers` = 1: in this process, no pool).
- `RayBackend` (bot/research/ray_backend.py, loaded only when asked for, so plain installs and
  the desktop app never import ray): each job is a Ray task, retried when its worker or node is lost.
- `make_backend("local" | "ray", workers=, address=)` picks one; `map_jobs(fn, items, ...)` is the
  one-call API (e.g. a seed / variant sweep of agent training): results in item order.

Life cycle: `open(fn)` ships `fn` to the workers once, `map(items, seeds)` runs jobs (any number
of times), `done()` ends the run, `close()` releases the backend (a Ray runtime it started).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from bot.errors import ConfigError
from bot.research.jobs import JobResult, job_seed, run_seeded

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
    """Jobs on a multiprocessing pool of `workers` processes on this machine (1: in process)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self._workers = int(workers)
        self._fn: Callable[[Any], Any] | None = None
        self._pool: Any = None

    @property
    def workers(self) -> int:
        return self._workers

    def open(self, fn: Callable[[Any], Any]) -> None:
        self.done()
        self._fn = fn
        if self._workers > 1:
            self._pool = multiprocessing.get_context().Pool(self._workers, initializer=_init_worker, initargs=(fn,))

    def map(self, items: Sequence[Any], seeds: Sequence[int]) -> Iterator[JobResult]:
        if self._fn is None:
            raise RuntimeError("open(fn) the backend before map()")
        jobs = [(i, item, seed) for i, (item, seed) in enumerate(zip(items, seeds, strict=True))]
        if self._pool is None:
            for job in jobs:
                yield _timed(self._fn, *job)
            return
        yield from self._pool.imap_unordered(_pool_job, jobs, chunksize=max(1, len(jobs) // (4 * self._workers)))

    def done(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
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
        return LocalBackend(workers)
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
