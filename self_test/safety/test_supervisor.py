"""The supervisor restarts real child processes after critical exits, with backoff and an hourly cap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bot.events import EventBus, EventKind
from bot.safety.supervisor import RestartPolicy, Supervisor, child_args, supervise
from self_test.conftest import make_settings, wait_for
from self_test.fakes.telegram_server import TOKEN, FakeTelegram

# The child: appends its argv to a log, then behaves as the plan for this run says.
CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    log, plan = sys.argv[1], sys.argv[2].split(",")
    with open(log, "a") as fh:
        fh.write(json.dumps(sys.argv[3:]) + "\\n")
    n = sum(1 for _ in open(log))
    step = plan[min(n, len(plan)) - 1]
    if step == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if step == "sleep":
        time.sleep(60)
    sys.exit(int(step))
""")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def rig(tmp_path: Path, plan: str, **overrides):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    log = tmp_path / "runs.log"
    settings = make_settings(tmp_path, **overrides)
    return settings, [sys.executable, str(script), str(log), plan], log


def runs(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_child_args_put_no_supervisor_after_the_command() -> None:
    assert child_args(["paper"]) == ["paper", "--no-supervisor"]
    assert child_args(["--env-file", "x.env", "live", "--yes"]) == ["--env-file", "x.env", "live", "--no-supervisor",
                                                                      "--yes"]
    assert child_args(["live", "--no-supervisor"]) == ["live", "--no-supervisor"]
    with pytest.raises(ValueError):
        child_args(["--env-file", "x.env"])


def test_policy_backoff_doubles_and_caps_per_hour() -> None:
    clock = Clock()
    p = RestartPolicy(backoff_seconds=5, max_per_hour=3, max_backoff_seconds=12, stable_seconds=600, clock=clock)
    assert [p.on_crash(1), p.on_crash(1), p.on_crash(1)] == [5, 10, 12]
    assert p.on_crash(1) is None  # fourth within the hour
    clock.t += 3600
    assert p.restarts_last_hour() == 0
    assert p.on_crash(1) == 12       # still crashing in a row: backoff stays up
    assert p.on_crash(700) == 5      # it had run stably: backoff starts afresh


def test_restarts_after_critical_exit_and_signal_crash(tmp_path) -> None:
    settings, cmd, log = rig(tmp_path, "3,kill,0", RESTART_BACKOFF_SECONDS=0.05, RESTART_MAX_PER_HOUR=5)
    bus = EventBus()
    q = bus.subscribe()
    rc = supervise(["paper", "--candles", "5"], settings, bus=bus, child_cmd=cmd)
    assert rc == 0
    assert runs(log) == [["paper", "--candles", "5"]] * 3
    restarts = []
    while not q.empty():
        ev = q.get_nowait()
        if ev.kind == EventKind.RESTART:
            restarts.append(ev)
    assert [e.data["exit_code"] for e in restarts] == [3, -signal.SIGKILL]
    assert [e.data["delay_s"] for e in restarts] == [0.05, 0.1]
    assert "killed by SIGKILL" in restarts[1].message


@pytest.mark.parametrize("code", [0, 1, 2])
def test_ordinary_exits_are_not_restarted(tmp_path, code: int) -> None:
    settings, cmd, log = rig(tmp_path, f"{code},0")
    assert Supervisor([], settings, bus=EventBus(), child_cmd=cmd).run() == code
    assert len(runs(log)) == 1


def test_gives_up_after_the_hourly_cap(tmp_path) -> None:
    settings, cmd, log = rig(tmp_path, "3", RESTART_BACKOFF_SECONDS=0.01, RESTART_MAX_PER_HOUR=2)
    bus = EventBus()
    q = bus.subscribe()
    assert Supervisor([], settings, bus=bus, child_cmd=cmd).run() == 3
    assert len(runs(log)) == 3  # the first run + 2 restarts
    kinds = []
    while not q.empty():
        kinds.append(q.get_nowait())
    assert [e.kind for e in kinds] == [EventKind.RESTART, EventKind.RESTART, EventKind.CRITICAL]
    assert kinds[-1].message.startswith("🚨 CRITICAL ERROR 🚨")


def test_stop_forwards_the_signal_and_does_not_restart(tmp_path) -> None:
    settings, cmd, log = rig(tmp_path, "sleep", RESTART_BACKOFF_SECONDS=0.01)
    sup = Supervisor([], settings, bus=EventBus(), child_cmd=cmd)
    out: list[int] = []
    t = threading.Thread(target=lambda: out.append(sup.run()))
    t.start()
    wait_for(lambda: len(runs(log)) == 1, 10, message="the child to start")
    sup.stop()
    t.join(10)
    assert not t.is_alive() and out == [0]
    assert len(runs(log)) == 1 and sup.runs == 1


def test_the_real_cli_runs_under_the_supervisor(tmp_path) -> None:
    """`python -m bot <cmd> --no-supervisor` really starts; exit 2 (bad usage) is passed through."""
    settings = make_settings(tmp_path)
    env = dict(os.environ, HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"))
    # `download --no-supervisor` is not an option of download: argparse exits 2, which must not restart.
    sup = Supervisor(["download"], settings, bus=EventBus(), env=env)
    assert sup.args == ["download", "--no-supervisor"]
    assert sup.run() == 2 and sup.runs == 1


def test_restart_alert_reaches_telegram(tmp_path) -> None:
    with FakeTelegram() as tg:
        env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "77"}
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        log = tmp_path / "runs.log"
        settings = make_settings(tmp_path, environ=env, TELEGRAM_BASE_URL=tg.url, RESTART_BACKOFF_SECONDS=0.01)
        rc = supervise([], settings, child_cmd=[sys.executable, str(script), str(log), "3,0"])  # own notifier
        assert rc == 0
        texts = tg.texts()  # stop() flushed the queue before supervise returned
    assert len(texts) == 1 and texts[0].startswith("♻️ RESTART: the bot ended with exit code 3 (critical error)")


SIGNAL_CHILD = textwrap.dedent("""
    import signal, sys, time
    log = sys.argv[1]
    def note(sig, _f):
        with open(log, "a") as fh:
            fh.write(signal.Signals(sig).name + "\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    with open(log, "a") as fh:
        fh.write("started\\n")
    time.sleep(60)
""")

SUPERVISOR = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from bot.events import EventBus
    from bot.safety.supervisor import supervise
    from config import load_settings
    s = load_settings(None, environ={}, HISTORICAL_DATA_PATH=sys.argv[2], LOG_FILE=sys.argv[2] + "/bot.log")
    sys.exit(supervise([], s, bus=EventBus(), child_cmd=[sys.executable, sys.argv[3], sys.argv[4]]))
""")


def test_ctrl_c_to_the_supervisor_stops_the_child_gracefully(tmp_path) -> None:
    from self_test.conftest import ROOT

    child = tmp_path / "child.py"
    child.write_text(SIGNAL_CHILD)
    log = tmp_path / "signals.log"
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(ROOT), str(tmp_path), str(child), str(log)])
    try:
        wait_for(lambda: log.exists() and "started" in log.read_text(), 20, message="the child to start")
        proc.send_signal(signal.SIGINT)  # to the supervisor only
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert log.read_text().split() == ["started", "SIGTERM"]  # a graceful stop, once, and no restart
