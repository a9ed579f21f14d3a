"""The review pipeline: rule reviewers by default, the LLM path against a loopback fake.

The real `openai` client talks to self_test/fakes/openai_server.py on 127.0.0.1. Each failure
mode (garbage, slow past the timeout, HTTP error, server down) must end in a journaled decision
by the rules, never a crash or a hang.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

from bot.analysis.indicators import adx as adx_of
from bot.analysis.indicators import compute_all
from bot.events import EventBus, EventKind
from bot.journal.store import Journal
from bot.market.timeframes import resample
from bot.strategies.base import LONG, SHORT, Decision, StrategyContext
from bot.strategies.lessons import Lesson
from bot.strategies.review import ReviewPipeline
from bot.strategies.reviewers import entry_adx
from self_test.conftest import make_settings
from self_test.fakes.openai_server import FakeOpenAI

KEY = "sk-test-fake-0123456789"


def _context(hourly, end: int, **kw) -> StrategyContext:
    """A real context: 600 closed BTC hours ending at row `end`."""
    frame = hourly.iloc[end - 600:end]
    ind = compute_all(frame)
    price = float(frame["close"].iloc[-1])
    return StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(frame.index[-1]) + 3_600_000,
                           price=price, candles={"60": frame}, indicators=ind,
                           regime=kw.pop("regime", "trending"),
                           levels=((round(price * 0.97, 2), 3), (round(price * 1.04, 2), 2)), **kw)


def _long(ctx: StrategyContext, *, rr: float = 2.0, confidence: float = 60.0, setup: str = "breakout") -> Decision:
    atr = float(ctx.indicators["atr_14"][-1])
    return Decision(target=LONG, confidence=confidence, setup=setup, stop_loss=ctx.price - 2.5 * atr,
                    take_profit=ctx.price + 2.5 * atr * rr, entry_zone=(ctx.price - atr / 2, ctx.price),
                    reason="test proposal", source="analyst")


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "state.db")
    yield j
    j.close()


@pytest.fixture
def fake():
    with FakeOpenAI(api_key=KEY) as f:
        yield f


def _llm_settings(tmp_path, fake: FakeOpenAI, **kw):
    return make_settings(tmp_path, environ={"LLM_API_KEY": KEY}, LLM_BASE_URL=fake.base_url,
                         LLM_MODEL="fake-reviewer-1", ANALYST_REVIEWER="llm", **kw)


# -- the rules ----------------------------------------------------------------------------------

def test_rules_approve_a_sound_proposal_and_journal_both_stages(settings, btc_hourly, journal):
    ctx = _context(btc_hourly, 9000)
    out = ReviewPipeline(settings, journal=journal).review(_long(ctx), ctx)
    assert out.approved and out.decision.target == LONG
    rows = journal.reviews()
    assert [(r["stage"], r["reviewer"], r["verdict"]) for r in rows] == [
        ("analyst", "rules", "approve"), ("risk", "rules", "approve")]
    assert rows[0]["proposal"]["setup"] == "breakout" and rows[0]["proposal"]["side"] == "long"
    assert journal.vetoes() == []


def test_rules_veto_poor_reward_risk_and_say_why(settings, btc_hourly, journal):
    ctx = _context(btc_hourly, 9000)
    bus = EventBus()
    q = bus.subscribe()
    out = ReviewPipeline(settings, journal=journal, bus=bus).review(_long(ctx, rr=1.2), ctx)
    assert not out.approved and out.decision.target == 0
    assert "reward/risk 1.20 below 1.50" in out.decision.reason
    assert [r["verdict"] for r in journal.reviews()] == ["veto"]  # the first veto ends the pipeline
    assert journal.vetoes()[0]["source"] == "analyst review (rules)"
    event = q.get_nowait()
    assert event.kind == EventKind.VETO and "VETOED" in event.message


def test_low_confidence_and_missing_setup_are_vetoed(settings, btc_hourly, journal):
    ctx = _context(btc_hourly, 9000)
    pipe = ReviewPipeline(settings, journal=journal)
    assert "confidence 40 below the minimum 45" in pipe.review(_long(ctx, confidence=40), ctx).decision.reason
    no_setup = Decision(target=SHORT, confidence=80, setup="none", stop_loss=ctx.price * 1.02,
                        take_profit=ctx.price * 0.9, source="analyst")
    assert "no recognised setup" in pipe.review(no_setup, ctx).decision.reason


def test_spot_market_vetoes_shorts_in_risk_review(tmp_path, btc_hourly, journal):
    s = make_settings(tmp_path, EXCHANGE_CATEGORY="spot")
    ctx = _context(btc_hourly, 9000)
    atr = float(ctx.indicators["atr_14"][-1])
    short = Decision(target=SHORT, confidence=70, setup="pullback", stop_loss=ctx.price + 2.5 * atr,
                     take_profit=ctx.price - 5 * atr, source="analyst")
    out = ReviewPipeline(s, journal=journal).review(short, ctx)
    assert not out.approved and out.verdicts[-1].stage == "risk" and "spot" in out.verdicts[-1].reason


def test_closing_a_position_is_not_reviewed(settings, btc_hourly, journal):
    ctx = _context(btc_hourly, 9000)
    out = ReviewPipeline(settings, journal=journal).review(Decision(target=0, source="analyst"), ctx)
    assert out.approved and not out.reviewed and journal.reviews() == []


def test_lesson_rule_tightens_the_rule_review(settings, btc_hourly, journal):
    ctx = _context(btc_hourly, 9000, regime="choppy")
    lesson = Lesson(id=1, time_ms=0, text="breakouts in choppy: require ADX > 25", rule={
        "kind": "tighten", "regime": "choppy", "setup": "breakout", "side": "long", "min_confidence": 55,
        "min_adx": 25})
    pipe = ReviewPipeline(settings, journal=journal, lessons=lambda: [lesson])
    out = pipe.review(_long(ctx, confidence=50), ctx)
    assert not out.approved and "minimum 55 (raised by a lesson)" in out.decision.reason
    # the ADX floor is the analyst's: ADX 14 of the 4 h candles, resampled from the context's hours
    adx = float(adx_of(*(resample(ctx.candles["60"], "60", "240")[k].to_numpy() for k in ("high", "low", "close")),
                       14)[0][-1])
    assert entry_adx(ctx, settings) == pytest.approx(adx)
    out = pipe.review(_long(ctx, confidence=60), ctx)
    assert out.approved == (adx > 25)
    if not out.approved:
        assert f"need ADX > 25 on 240, ADX is {adx:.0f}" in out.decision.reason
    for floor, approved in ((adx - 1, True), (adx + 1, False)):
        lz = Lesson(id=2, time_ms=0, text="t", rule=dict(lesson.rule, min_confidence=45, min_adx=floor))
        if floor <= settings.LESSON_MAX_MIN_ADX:
            assert ReviewPipeline(settings, lessons=lambda lz=lz: [lz]).review(_long(ctx), ctx).approved == approved
    # a pullback is a different pattern: the lesson does not touch it
    assert pipe.review(_long(ctx, confidence=50, setup="pullback"), ctx).approved


# -- the LLM path -------------------------------------------------------------------------------

def test_llm_valid_answer_decides_and_sees_lessons_and_chart(tmp_path, btc_hourly, journal, fake):
    s = _llm_settings(tmp_path, fake, LLM_ATTACH_CHART=True)
    fake.answer = {"verdict": "veto", "reason": "breakout into resistance 4% above", "confidence": 35}
    lesson = Lesson(id=7, time_ms=0, text="2019-01-01: long breakouts in a choppy regime lose", rule={"kind": "note"})
    ctx = _context(btc_hourly, 9000)
    out = ReviewPipeline(s, journal=journal, lessons=lambda: [lesson]).review(_long(ctx), ctx)
    assert not out.approved
    v = out.verdicts[0]
    assert (v.reviewer, v.reason, v.confidence, v.fallback) == (
        "llm:fake-reviewer-1", "breakout into resistance 4% above", 35.0, "")
    row = journal.reviews()[0]
    assert (row["reviewer"], row["verdict"], row["reason"]) == ("llm:fake-reviewer-1", "veto",
                                                                "breakout into resistance 4% above")
    req = fake.requests[0]
    assert req["model"] == "fake-reviewer-1"
    assert req["response_format"]["json_schema"]["strict"] is True
    assert "long breakouts in a choppy regime lose" in req["messages"][0]["content"]
    parts = req["messages"][1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_llm_approval_then_rule_risk_review(tmp_path, btc_hourly, journal, fake):
    s = _llm_settings(tmp_path, fake)
    ctx = _context(btc_hourly, 9000)
    out = ReviewPipeline(s, journal=journal).review(_long(ctx), ctx)
    assert out.approved
    assert [(r["stage"], r["reviewer"]) for r in journal.reviews()] == [
        ("analyst", "llm:fake-reviewer-1"), ("risk", "rules")]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode, why", [("garbage", "garbage answer"), ("slow", "timeout"),
                                       ("error", "http 500"), ("down", "down")])
def test_llm_failures_fall_back_to_the_rules_and_are_journaled(tmp_path, btc_hourly, journal, fake, mode, why):
    # A short timeout only where it is the point; elsewhere a loaded machine must not turn a quick
    # garbage answer into a timeout.
    s = _llm_settings(tmp_path, fake, LLM_TIMEOUT=0.5 if mode == "slow" else 10.0, RISK_REVIEWER="llm")
    fake.delay = 10.0
    fake.mode = mode
    if mode == "down":
        assert fake.is_refusing()
    ctx = _context(btc_hourly, 9000)
    pipe = ReviewPipeline(s, journal=journal)
    good, poor = _long(ctx), _long(ctx, rr=1.2)
    out = pipe.review(good, ctx)
    assert out.approved  # the rules approve the sound proposal ...
    out_poor = pipe.review(poor, ctx)
    assert not out_poor.approved  # ... and veto the poor one, as they would without an LLM
    rows = journal.reviews()
    assert [(r["stage"], r["verdict"]) for r in rows] == [("analyst", "approve"), ("risk", "approve"),
                                                         ("analyst", "veto")]
    assert all(r["reviewer"] == f"rules (llm {why})" for r in rows)
    assert all(r["proposal"]["fallback"] == why for r in rows)
    assert KEY not in str(rows) and KEY not in str(journal.vetoes())
    if mode != "down":
        assert len(fake.requests) == 3


def test_llm_not_configured_uses_rules_and_says_so(tmp_path, btc_hourly, journal):
    s = make_settings(tmp_path, ANALYST_REVIEWER="llm")
    ctx = _context(btc_hourly, 9000)
    out = ReviewPipeline(s, journal=journal).review(_long(ctx), ctx)
    assert out.approved and out.verdicts[0].reviewer.startswith("rules (llm not configured")


def test_risk_review_vetoes_entries_into_a_volatility_spike(settings, btc_hourly, journal):
    # Find the real hour of the seed where ATR stood highest above its 100-hour median.
    ctx = None
    best = 0.0
    for end in range(1000, len(btc_hourly), 500):
        c = _context(btc_hourly, end)
        atr = c.indicators["atr"][-100:]
        ratio = atr[-1] / np.median(atr)
        if ratio > best:
            best, ctx = ratio, c
    assert best > settings.VOLATILITY_SPIKE_RATIO
    out = ReviewPipeline(settings, journal=journal).review(_long(ctx), ctx)
    assert not out.approved and out.verdicts[-1].stage == "risk" and "volatility spike" in out.verdicts[-1].reason


@pytest.mark.parametrize("kind", ["memory", "none"])
def test_a_journal_that_keeps_no_reviews_still_gets_the_events(settings, btc_hourly, kind):
    """The backtest's MemoryJournal keeps no reviews or lessons (and no journal keeps nothing):
    the verdict, and the events saying who decided, are the same."""
    from bot.journal.base import MemoryJournal

    bus = EventBus()
    q = bus.subscribe()
    ctx = _context(btc_hourly, 9000)
    pipeline = ReviewPipeline(settings, journal=MemoryJournal() if kind == "memory" else None, bus=bus)
    assert pipeline.learn is (kind == "memory")
    out = pipeline.review(_long(ctx, rr=1.2), ctx)
    assert not out.approved and "reward/risk" in out.verdicts[-1].reason
    assert q.get_nowait().kind == EventKind.VETO
    assert pipeline.current_lessons() == []


def test_reviewed_strategy_puts_the_pipeline_behind_decide(settings, btc_hourly, journal):
    from bot.strategies.analyst import AnalystStrategy
    from bot.strategies.review import ReviewedStrategy

    analyst = AnalystStrategy(settings)
    wrapped = ReviewedStrategy(analyst, ReviewPipeline(settings, journal=journal))
    assert wrapped.name == "analyst" and wrapped.warmup == analyst.warmup
    t = int(btc_hourly.index[9000])  # an hour's open time that is a 4 h close: 2018-07-..
    t -= t % (4 * 3_600_000)
    seen = []
    for k in range(0, 24 * 20, 4):  # twenty real days of 4 h closes until a proposal comes
        ctx = _context(btc_hourly, btc_hourly.index.get_loc(t + k * 3_600_000))
        d = wrapped.decide(ctx)
        if wrapped.last_outcome is not None:
            seen.append((d, wrapped.last_outcome))
            break
    assert seen, "no proposal in twenty days"
    d, outcome = seen[0]
    assert d == outcome.decision and [r["stage"] for r in journal.reviews()] == (
        ["analyst", "risk"] if outcome.approved else [v.stage for v in outcome.verdicts])


def test_llm_without_structured_outputs_is_asked_for_a_json_object(tmp_path, btc_hourly, journal, fake):
    s = _llm_settings(tmp_path, fake)
    fake.mode = "no_schema"
    fake.answer = {"verdict": "veto", "reason": "late entry after a 6% run", "confidence": 30}
    ctx = _context(btc_hourly, 9000)
    out = ReviewPipeline(s, journal=journal).review(_long(ctx), ctx)
    assert not out.approved and out.verdicts[0].reviewer == "llm:fake-reviewer-1"
    assert [r["response_format"]["type"] for r in fake.requests] == ["json_schema", "json_object"]
    assert journal.reviews()[0]["reason"] == "late entry after a 6% run"
