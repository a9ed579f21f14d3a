"""Research jobs on Ray (an optional dependency: requirements-ray.txt): each job is a Ray task.

`RayBackend(address=None)` starts Ray on this machine for the run (its node on loopback only, no
usage statistics sent); `address="auto"` joins the cluster started on this machine with
`ray start`, `"host:6379"` joins that cluster's head as a driver, `"ray://host:10001"` through the
Ray client. The function every job calls is put in the object store once and kept by each
worker process after its first job, so a job ships only its item and seed.

A job whose worker process or node dies is run again by Ray (`max_retries`), on any node; a job
that raises is not retried (the same item and seed would raise again) and its error is the
caller's. Joining a cluster, the backend ships this project's code with the job (Ray's runtime
environment: the `bot` package and config.py, uploaded once and cached by content), so the
nodes need only Python, ray (the same version) and requirements.txt.

Nothing but `bot.research.backend.make_backend("ray")` imports this module, and this module
imports ray only when a backend is made: plain installs and the desktop app never need ray.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bot.errors import BotError, ConfigError
from bot.research.jobs import JobResult, run_seeded

__all__ = ["RayBackend", "import_ray", "init_client", "MISSING"]

log = logging.getLogger("bot.research")

ROOT = Path(__file__).resolve().parent.parent.parent      # the project: bot/ and config.py
MISSING = "--backend ray needs the optional package ray: pip install -r requirements-ray.txt"


def import_ray(*, local: bool = False) -> Any:
    """The ray module, or a one-line ConfigError when it is not installed. `local`: Ray will be
    started in this process, so its node binds to loopback (Ray's own setting on macOS and
    Windows), unless ray was imported already."""
    saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    if local and "ray" not in sys.modules:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"   # read once, when ray is imported
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(MISSING) from exc
    finally:
        if saved is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved
    return ray


# ------------------------------------------------------------------------------------------------
# worker side: the run's function, fetched from the object store once per worker process
_FN: dict[str, Callable[[Any], Any]] = {}


def _job(box: list[Any], index: int, item: Any, seed: int) -> JobResult:
    import ray

    ref = box[0]                        # inside a list, so Ray passes the reference, not the value
    fn = _FN.get(ref.hex())
    if fn is None:
        _FN.clear()
        fn = _FN[ref.hex()] = ray.get(ref)
    t0 = time.perf_counter()
    value = run_seeded(fn, item, seed)
    return JobResult(index, value, ray.get_runtime_context().get_node_id(), time.perf_counter() - t0)


# What the Ray client says when the cluster's client server could not start the server of this
# connection (its "specific server"): a transient failure on the cluster's side (seen once in CI:
# the new server process died at start, gRPC's "epoll_wait error: Bad file descriptor" in its log).
_SERVER_START_FAILED = "Initialization failure from server"


def init_client(init: Callable[[], Any], address: str, *, attempts: int = 3, wait: float = 2.0) -> Any:
    """`init()` (ray.init to `address`), tried again, up to `attempts` times in all, when the
    cluster answered that it could not start this connection's server; any other failure, or the
    last one, is raised as it is."""
    for attempt in range(1, attempts + 1):
        try:
            return init()
        except ConnectionError as exc:
            if _SERVER_START_FAILED not in str(exc) or attempt == attempts:
                raise
            log.warning("Ray at %s could not start this connection's server (try %d of %d); trying again in %g s",
                        address, attempt, attempts, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _probe(address: str, timeout: float = 10.0) -> None:
    """Fail at once, in one line, when `HOST:PORT` / `ray://HOST:PORT` does not answer (ray.init
    would retry for minutes, logging every try). "auto" is left to Ray, which finds it or says so."""
    import socket

    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r} is not auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from exc


class RayBackend:
    """Jobs as Ray tasks (1 CPU each) on the cluster at `address` (None: Ray started here with
    `num_cpus` CPUs, all by default); a lost worker's job is retried up to `retries` times."""

    name = "ray"

    def __init__(self, address: str | None = None, *, retries: int = 3, num_cpus: int | None = None,
                 ship_code: bool = True) -> None:
        self.address = address or None
        self.ship_code = ship_code
        self.retries = int(retries)
        self.num_cpus = num_cpus
        self._ray = import_ray(local=self.address is None)
        self._started = False          # True when this backend started (and so stops) the Ray runtime
        self._remote: Any = None
        self._box: list[Any] | None = None

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        opts: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
        try:
            if self.address is None:
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, **opts)
            else:
                _probe(self.address)
                if self.ship_code:
                    opts["runtime_env"] = {"py_modules": [str(ROOT / "bot"), str(ROOT / "config.py")],
                                           "excludes": ["__pycache__", "*.pyc"]}
                init_client(lambda: ray.init(address=self.address, **opts), self.address)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = self.address or "this machine"
            raise ConfigError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0]}") from exc
        self._started = True

    @property
    def workers(self) -> int:
        self.connect()
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def nodes(self) -> list[str]:
        """Ids of the cluster's live nodes."""
        self.connect()
        return [n["NodeID"] for n in self._ray.nodes() if n.get("Alive")]

    # -- jobs ------------------------------------------------------------------------------------
    def open(self, fn: Callable[[Any], Any]) -> None:
        self.connect()
        if self._remote is None:
            self._remote = self._ray.remote(num_cpus=1, max_retries=self.retries, retry_exceptions=False)(_job)
        self._box = [self._ray.put(fn)]

    def map(self, items: Sequence[Any], seeds: Sequence[int]) -> Iterator[JobResult]:
        if self._box is None:
            raise RuntimeError("open(fn) the backend before map()")
        ray = self._ray
        pending = [self._remote.remote(self._box, i, item, seed)
                   for i, (item, seed) in enumerate(zip(items, seeds, strict=True))]
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    yield ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:   # the job itself raised: its own error
                    raise exc.as_instanceof_cause() from None
                except ray.exceptions.RayError as exc:       # lost more often than it may be retried
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise BotError(f"a Ray job was lost {self.retries + 1} times ({type(exc).__name__}: "
                                   f"{first}); the checkpoint keeps the work done so far") from exc
        finally:
            for ref in pending:          # stopped early (an error, Ctrl-C): drop the rest
                ray.cancel(ref, force=True)

    def done(self) -> None:
        self._box = None

    def close(self) -> None:
        self.done()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
