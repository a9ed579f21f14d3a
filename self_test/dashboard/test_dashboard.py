"""The web dashboard over a running paper engine that replays the real seed candles: its API, its
live stream, its safety (401 without the token, 403 with control off, no secret in any answer),
and the page itself in a real headless chromium, with a screenshot."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bot.dashboard.auth import COOKIE, check_bind
from bot.dashboard.server import DashboardServer, start_dashboard
from bot.engine.app import App, fixed_pairs
from bot.engine.trading_engine import TradingEngine
from bot.errors import ConfigError
from bot.journal.store import Journal
from bot.market.feeds import ReplayMarket
from self_test.conftest import ROOT, make_settings, wait_for
from self_test.dashboard.browser import Chromium, chromium_path

TOKEN = "dash-TOKEN-for-tests-0123456789abcdef"
PAGE = {"X-Requested-By": "dashboard"}   # what the page's own script sends with an order
SECRETS = {"BYBIT_API_KEY": "bybitKEYsecret123456", "BYBIT_API_SECRET": "bybitSECRETvalue987654321",
           "TELEGRAM_BOT_TOKEN": "555:telegramSECRETtokenXYZ", "LLM_API_KEY": "sk-llmSECRETkey0000"}


def _settings(tmp_path: Path, **kw: object):
    env = dict(SECRETS)
    env.update({k: str(v) for k, v in kw.pop("environ", {}).items()})  # type: ignore[attr-defined]
    kw.setdefault("DASHBOARD_PORT", 1)
    # hourly BTC: tens of thousands of recorded candles, so the replay outlasts every test of the module
    return make_settings(tmp_path, environ=env, CANDLE_INTERVAL="60", STRATEGY="sma", TRAINING_ENABLED=False,
                         REPLAY_CANDLE_SECONDS=0.03, BYBIT_BASE_URL="http://127.0.0.1:1", TELEGRAM_COMMANDS=False,
                         FALLBACK_SYMBOLS=("BTCUSDT",), TOP_PAIRS_COUNT=1, **kw)


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[App]:
    """A paper engine replaying the real hourly BTC candles, with trades made."""
    tmp = tmp_path_factory.mktemp("dash")
    s = _settings(tmp)
    # the replay the engine would choose itself, given so that a test can hold it still (`_held`)
    market = ReplayMarket(s, symbols=list(s.FALLBACK_SYMBOLS))
    engine = TradingEngine(s, strategy="sma", pairs=fixed_pairs(s), market=market, force_replay=True)
    app = App(s, engine)
    app.start("PAPER")
    wait_for(lambda: len(engine.recent_trades) >= 3 and engine.candles_processed >= 400, 120,
             message="a few closed trades on the replayed candles")
    yield app
    app.shutdown()
    market.close()


@contextmanager
def _held(app: App) -> Iterator[None]:
    """No replayed candle while inside: a position opened meanwhile stays open (no candle, no
    stop or take-profit) however slowly the page refreshes. The engine loop still runs: commands,
    snapshots, the dashboard's stream."""
    market = app.engine.given.market
    assert isinstance(market, ReplayMarket)
    pace = market.pace
    market.pace = 1e9            # ReplayMarket.next_candles: the next candle is due in 30 years
    try:
        yield
    finally:
        market.pace = pace


def _server(app: App, **kw: object) -> DashboardServer:
    return DashboardServer(app.remote, host="127.0.0.1", port=0, **kw).start()  # type: ignore[arg-type]


def test_state_chart_and_live_stream(running: App) -> None:
    srv = _server(running)
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as c:
            st = c.get("/api/state").json()
            assert st["mode"] == "PAPER" and st["data_source"] == "REPLAY" and st["control"] is False
            assert st["active_pairs"] == ["BTCUSDT"] and st["candles"] >= 400
            assert len(st["equity_curve"]) > 100 and st["trades"] and st["events"]
            assert {c["name"] for c in st["promotion"]} >= {"closed trades", "net profit after fees"}
            curve = st["equity_curve"]
            assert curve[0]["equity"] == curve[0]["buy_hold"]           # both start from the same equity
            assert any(p["buy_hold"] != curve[0]["buy_hold"] for p in curve)   # and B&H moves with the prices
            chart = c.get("/api/chart", params={"symbol": "btcusdt", "n": 50}).json()
            assert chart["symbol"] == "BTCUSDT" and len(chart["candles"]) == 50 and chart["source"] == "REPLAY"
            assert all(a["time"] < b["time"] for a, b in zip(chart["candles"][:-1], chart["candles"][1:], strict=True))
            assert c.get("/api/chart", params={"symbol": "NOPEUSDT"}).status_code == 404
            kinds: list[str] = []
            states: list[dict] = []
            with c.stream("GET", "/api/stream") as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                kind = ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                        kinds.append(kind)
                    elif line.startswith("data: ") and kind == "state":
                        states.append(json.loads(line[6:]))
                    if len(states) >= 3 and "event" in kinds:
                        break
            assert states[-1]["candles"] > states[0]["candles"]           # it is live: the replay moved on
    finally:
        srv.stop()


def test_control_is_off_by_default_and_journaled_when_on(running: App) -> None:
    srv = _server(running)
    try:
        r = httpx.post(srv.url + "/api/control/pause", timeout=10, headers=PAGE)
        assert r.status_code == 403 and "DASHBOARD_ALLOW_CONTROL" in r.json()["detail"]
        assert running.engine.snapshot().status == "Running"
    finally:
        srv.stop()
    srv = _server(running, allow_control=True)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.get("/api/state").json()["control"] is True
            # a cross-site form post (no custom header) or a rebound host name orders nothing
            assert c.post("/api/control/pause").status_code == 403
            assert c.get("/api/state", headers={"Host": "evil.example:80"}).status_code == 403
            assert running.engine.snapshot().status == "Running"
            c.headers.update(PAGE)
            assert c.post("/api/control/pause").json()["ok"]
            wait_for(lambda: running.engine.snapshot().status == "Paused", 10, message="paused")
            assert c.post("/api/control/resume").json()["text"] == "resumed"
            wait_for(lambda: running.engine.snapshot().status == "Running", 10, message="running")
            assert c.post("/api/control/launch-live").status_code == 404
    finally:
        srv.stop()
    journal = running.engine.session_journal()
    assert isinstance(journal, Journal)
    said = [e.message for e in journal.recent_events(300) if e.data.get("source") == "dashboard"]
    assert any(m.startswith("dashboard command pause: refused") for m in said), said
    assert "dashboard command pause: paused: no new decisions; open positions keep their stops" in said
    assert said.count("dashboard command resume: resumed") == 1, said      # journaled once, not bus + direct


def test_a_token_guards_every_page_and_answer(running: App) -> None:
    srv = _server(running, token=TOKEN)
    try:
        with httpx.Client(base_url=srv.url, timeout=20, follow_redirects=False) as c:
            assert c.get("/api/state").status_code == 401
            assert c.get("/api/state", headers={"Authorization": "Bearer wrong-" + TOKEN}).status_code == 401
            assert c.get("/api/state", headers={"Authorization": "Basic " + TOKEN}).status_code == 401
            assert c.get("/api/stream").status_code == 401
            assert c.post("/api/control/pause").status_code == 401
            assert c.get("/api/state", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            page = c.get("/")
            assert page.status_code == 303 and page.headers["location"] == "/login"
            bad = c.post("/login", content="token=nope", headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert bad.status_code == 303 and COOKIE not in bad.cookies
            good = c.post("/login", content=f"token={TOKEN}",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
            cookie = good.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
            assert c.get("/").status_code == 200 and c.get("/api/state").status_code == 200   # the cookie now
            c.cookies.clear()
            c.cookies.set(COOKIE, "forged")
            assert c.get("/api/state").status_code == 401
    finally:
        srv.stop()


def test_refuses_to_listen_beyond_loopback_without_a_token() -> None:
    with pytest.raises(ConfigError, match="DASHBOARD_TOKEN"):
        check_bind("0.0.0.0", "")
    with pytest.raises(ConfigError, match="too short"):
        check_bind("0.0.0.0", "short")
    check_bind("0.0.0.0", TOKEN)
    check_bind("127.0.0.1", "")


def test_no_secret_on_any_page_or_answer(running: App, tmp_path) -> None:
    s = running.settings.replace(DASHBOARD_TOKEN=TOKEN, DASHBOARD_PORT=_free_port(), DASHBOARD_ALLOW_CONTROL=True)
    app = App(s, running.engine, notifier=running.notifier)
    running.engine.bus.emit("info", f"a careless message with {SECRETS['BYBIT_API_SECRET']} in it")
    srv = start_dashboard(app)
    secrets = [*SECRETS.values(), TOKEN]
    try:
        with httpx.Client(base_url=srv.url, timeout=20, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            bodies = [c.get(p).text for p in ("/", "/login", "/api/state", "/api/chart?symbol=BTCUSDT", "/healthz",
                                              "/static/dashboard.js", "/static/index.html", "/api/nothing")]
            bodies.append(c.post("/api/control/nothing").text)
            with c.stream("GET", "/api/stream") as r:
                chunk = ""
                for line in r.iter_lines():
                    chunk += line + "\n"
                    if chunk.count("event: ") >= 3:
                        break
            bodies.append(chunk)
        assert "a careless message with ***" in bodies[2] or "a careless message with ***" in chunk
        for body in bodies:
            for secret in secrets:
                assert secret not in body
    finally:
        srv.stop()


def test_the_window_starts_the_dashboard_when_the_setting_says_so(tmp_path) -> None:
    from bot.ui.app import _default_app_factory

    port = _free_port()
    app = _default_app_factory(_settings(tmp_path, DASHBOARD_ENABLED=True, DASHBOARD_PORT=port))()
    try:
        st = httpx.get(f"http://127.0.0.1:{port}/api/state", timeout=10).json()
        assert st["status"] == "Stopped" and st["positions"] == []        # the window's engine, not started yet
    finally:
        app.shutdown()                                                     # ... and the app's shutdown stops it
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/state", timeout=5)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_page_in_a_real_browser(running: App, tmp_path) -> None:
    from PIL import Image

    eng = running.engine
    eng.pause()                  # no new decisions while the page is looked at (candles still come in)
    srv = _server(running)
    try:
        with Chromium(width=1280, height=1700) as browser:
            browser.open(srv.url + "/")
            browser.wait_js("window.dashboardReady === true", 60)
            browser.wait_js("document.getElementById('live').textContent.includes('live')", 30)
            browser.wait_js("document.querySelectorAll('#price-chart canvas').length > 0", 30)
            browser.wait_js("document.getElementById('chart-note').textContent.includes('REPLAY')", 30)
            text = browser.js("document.body.innerText")
            assert "PAPER" in text and "Paused" in text and "REPLAY data" in text and "USDT" in text
            assert browser.js("document.querySelectorAll('#trades tr').length") >= 3
            assert browser.js("document.querySelectorAll('#promotion tr').length") >= 5
            assert browser.js("document.getElementById('controls').hidden") is True      # read-only page
            assert browser.js("document.querySelectorAll('#events li').length") > 0
            before = browser.js("document.getElementById('candles').textContent")
            browser.wait_js(f"document.getElementById('candles').textContent !== {json.dumps(before)}", 30)  # live
            # An open position on the page. The replay is held while the page is looked at: at 0.03 s a
            # candle, a stop or take-profit closed a new position within 5-35 candles (0.15-1 s), often
            # between two of the page's once-a-second states, so the page never had it to show.
            # Both orders run on the engine thread after the hold began: no candle comes after them.
            with _held(running):
                eng.submit_close_position("BTCUSDT").result(30)      # what the strategy left open, if anything
                assert eng.submit_manual_order("BTCUSDT", "buy", 60).result(30).ok
                wait_for(lambda: bool(eng.snapshot().positions), 10, message="the filled order's open position")
                try:
                    browser.wait_js("document.getElementById('positions').innerText.includes('BTCUSDT')", 30)
                except AssertionError as exc:
                    raise AssertionError(f"the open position never showed on the page: {exc}; the page's last "
                                         f"positions: {browser.js('(window.lastState || {}).positions')}") from exc
                png = browser.screenshot()
            assert not [m for m in browser.console if m.startswith("exception")], browser.console
    finally:
        srv.stop()
        eng.resume()
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.size == (1280, 1700)
    assert len(img.getcolors(1 << 20) or []) > 50          # drawn charts and text, not a blank page
    (tmp_path / "dashboard.png").write_bytes(png)
    if os.environ.get("UPDATE_SCREENSHOTS"):
        (ROOT / "docs" / "dashboard.png").write_bytes(png)
