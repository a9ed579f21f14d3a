"""A real two-node Ray cluster on this machine for the tests: a head and a worker node, each a
`ray start` process with 1 CPU, on loopback addresses of their own (127.0.0.2 and 127.0.0.3: Ray
rewrites 127.0.0.1 to the machine's network address, these it keeps), free ports, a temp dir of
the test's, token authentication with a token of its own. Stopped by killing the process group of each `ray start` (SIGTERM, then SIGKILL),
never by `ray stop`, which would stop every Ray of the machine, other users' too.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def auth(token: str) -> dict[str, str]:
    """Token authentication with the cluster's own token (never the user's ~/.ray/auth_token)."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}


def ray_env(temp: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_TOKEN_PATH")}
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(temp), **auth(token)}


@dataclass
class Cluster:
    address: str            # the head's GCS, for drivers on this machine
    client_address: str     # ray://..., the Ray client server of the head
    temp: Path
    groups: list[int]
    token: str = ""         # drivers need it: RAY_AUTH_MODE=token, RAY_AUTH_TOKEN=token

    def processes(self) -> list[int]:
        """Pids of every process still in the cluster's process groups."""
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if os.getpgid(int(d.name)) in self.groups and "Z" not in _state(d):
                        out.append(int(d.name))
                except (ProcessLookupError, PermissionError, FileNotFoundError):
                    pass
        return out


def _state(d: Path) -> str:
    try:
        return d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _start(args: list[str], temp: Path, token: str, log: Path, groups: list[int]) -> None:
    with log.open("w") as out:
        proc = subprocess.Popen([RAY, "start", *args], env=ray_env(temp, token), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        groups.append(proc.pid)            # its own process group: every daemon it starts is in it
        code = proc.wait(timeout=120)
    if code != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed ({code}):\n{log.read_text()[-3000:]}")


def stop(groups: list[int], timeout: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for g in groups:
            try:
                os.killpg(g, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        probe = Cluster("", "", Path(), groups)
        while probe.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not probe.processes():
            return


@contextmanager
def two_node_cluster(temp: Path) -> Iterator[Cluster]:
    """Head (127.0.0.2) + worker node (127.0.0.3), 1 CPU each; stopped even when a test fails."""
    port, client_port = free_port(), free_port()
    token = secrets.token_hex(32)
    groups: list[int] = []
    try:
        _start(["--head", "--node-ip-address", HEAD_IP, "--port", str(port), "--num-cpus", "1",
                "--ray-client-server-port", str(client_port), "--temp-dir", str(temp / "t"),
                "--include-dashboard=false", "--disable-usage-stats"], temp, token, temp / "head.log", groups)
        _start(["--address", f"{HEAD_IP}:{port}", "--node-ip-address", WORKER_IP, "--num-cpus", "1",
                "--disable-usage-stats"], temp, token, temp / "worker.log", groups)
        yield Cluster(f"{HEAD_IP}:{port}", f"ray://{HEAD_IP}:{client_port}", temp, groups, token)
    finally:
        stop(groups)
