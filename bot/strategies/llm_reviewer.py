"""An LLM reviewer behind any OpenAI-compatible chat endpoint, with the rules as its safety net.

Configured by LLM_BASE_URL, LLM_MODEL and LLM_API_KEY (from .env), it sends the proposal, the
market facts and the active lessons, asks for a strict JSON verdict, and waits at most
LLM_TIMEOUT seconds. Whatever goes wrong (timeout, connection refused, HTTP error, an answer
that is not the JSON asked for) ends in the rule reviewer's verdict, marked "rules (llm ...)"
so the journal shows who really decided. It never raises into the trading loop and never hangs
it: the call runs in a daemon thread with a hard deadline on top of the client's own timeout.

With LLM_ATTACH_CHART the candlestick chart of the entry timeframe (PNG, matplotlib Agg, as a
base64 data URL) is attached for models that read images.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bot.strategies.base import Decision, StrategyContext
from bot.strategies.lessons import Lesson
from bot.strategies.reviewers import Verdict, proposal_record

__all__ = ["LLMReviewer", "ANSWER_SCHEMA", "parse_answer", "render_chart_png", "build_messages"]

log = logging.getLogger(__name__)

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["approve", "veto"]},
        "reason": {"type": "string", "description": "one or two sentences a trader can read"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 100},
    },
    "required": ["verdict", "reason", "confidence"],
    "additionalProperties": False,
}

ROLES = {
    "analyst": ("You review trade proposals for setup quality: does the setup match the trend, momentum, "
                "volume and support/resistance, and is the higher timeframe in agreement?"),
    "risk": ("You review trade proposals for risk: stop placement, reward/risk, volatility, regime and "
             "account exposure. Veto when the risk is not worth it."),
}
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
MAX_REASON = 400


def parse_answer(content: Any) -> tuple[bool, str, float] | None:
    """(approved, reason, confidence) from the model's text, or None when it is not the schema."""
    if not isinstance(content, str):
        return None
    m = _FENCE.match(content)  # many models wrap JSON in a code fence even when told not to
    text = m.group(1) if m else content.strip()
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or set(data) - set(ANSWER_SCHEMA["properties"]):
        return None
    verdict, reason, conf = data.get("verdict"), data.get("reason"), data.get("confidence")
    if verdict not in ("approve", "veto") or not isinstance(reason, str) or not reason.strip():
        return None
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 <= conf <= 100:
        return None
    return verdict == "approve", " ".join(reason.split())[:MAX_REASON], float(conf)


def render_chart_png(frame: pd.DataFrame, *, title: str = "", levels: Sequence[tuple[float, int]] = (),
                     stop: float | None = None, take_profit: float | None = None, bars: int = 120) -> bytes:
    """A candlestick chart of the last `bars` candles with EMA 21/50, S/R, stop and target (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg: no display, thread-safe use
    from matplotlib.figure import Figure

    closes_all = frame["close"].astype(float)
    ema21 = closes_all.ewm(span=21, adjust=False).mean().to_numpy()[-bars:]
    ema50 = closes_all.ewm(span=50, adjust=False).mean().to_numpy()[-bars:]
    f = frame.iloc[-bars:]
    o, h, lo, c = (f[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    x = np.arange(len(f))
    fig = Figure(figsize=(8, 4.5), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    up = c >= o
    ax.vlines(x, lo, h, color=np.where(up, "#26a69a", "#ef5350"), linewidth=0.8)
    ax.bar(x, np.abs(c - o) + 1e-12, bottom=np.minimum(o, c), color=np.where(up, "#26a69a", "#ef5350"), width=0.7)
    ax.plot(x, ema21, color="#1e88e5", linewidth=1, label="EMA 21")
    ax.plot(x, ema50, color="#fb8c00", linewidth=1, label="EMA 50")
    for price, touches in levels:
        ax.axhline(price, color="grey", linestyle=":", linewidth=0.8 + 0.2 * min(int(touches), 5))
    if stop is not None:
        ax.axhline(stop, color="#c62828", linestyle="--", linewidth=1, label="stop")
    if take_profit is not None:
        ax.axhline(take_profit, color="#2e7d32", linestyle="--", linewidth=1, label="take-profit")
    ticks = x[:: max(1, len(x) // 6)]
    ax.set_xticks(ticks, [pd.Timestamp(int(t), unit="ms", tz="UTC").strftime("%m-%d %H:%M")
                          for t in f.index.to_numpy()[ticks]], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _market_facts(context: StrategyContext) -> dict[str, Any]:
    facts: dict[str, Any] = {"regime": context.regime,
                             "levels": [[round(p, 2), int(t)] for p, t in context.levels[:8]],
                             "position": context.position_target}
    for name, arr in context.indicators.items():
        if arr is not None and len(arr):
            v = float(np.asarray(arr, dtype=float)[-1])
            if np.isfinite(v):
                facts[name] = round(v, 4)
    frame = context.candles.get(context.interval)
    if frame is not None and len(frame):
        tail = frame.iloc[-12:]
        facts["recent_candles_ohlc"] = [[round(float(r.open), 2), round(float(r.high), 2), round(float(r.low), 2),
                                         round(float(r.close), 2)] for r in tail.itertuples()]
    facts.update({k: v for k, v in context.extra.items() if isinstance(v, (str, int, float, bool))})
    return facts


def build_messages(stage: str, proposal: Decision, context: StrategyContext, lessons: Sequence[Lesson], *,
                   chart_png: bytes | None = None) -> list[dict[str, Any]]:
    """The chat messages: role and rules, lessons, then the proposal and market facts (and chart)."""
    system = [ROLES[stage],
              "Answer with one JSON object only, no prose around it: "
              '{"verdict": "approve" | "veto", "reason": "<one or two sentences>", "confidence": <0-100>}.']
    active = [lz.text for lz in lessons if lz.active]
    if active:
        system.append("Lessons learned from this account's journal (apply them):\n- " + "\n- ".join(active))
    payload = {"proposal": proposal_record(proposal, context), "market": _market_facts(context)}
    user_text = "Review this proposal.\n" + json.dumps(payload, default=str)
    user: Any = user_text
    if chart_png is not None:
        url = "data:image/png;base64," + base64.b64encode(chart_png).decode("ascii")
        user = [{"type": "text", "text": user_text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "system", "content": "\n\n".join(system)}, {"role": "user", "content": user}]


class LLMReviewer:
    """One review stage done by a language model, falling back to `fallback` (the rules)."""

    def __init__(self, settings: Any, *, stage: str, fallback: Any, client: Any = None,
                 attach_chart: bool | None = None) -> None:
        if stage not in ROLES:
            raise ValueError(f"review stage {stage!r} is unknown; allowed: {', '.join(ROLES)}")
        self.settings = settings
        self.stage = stage
        self.fallback = fallback
        self.timeout = float(settings.LLM_TIMEOUT)
        self.attach_chart = settings.LLM_ATTACH_CHART if attach_chart is None else attach_chart
        self.model = settings.LLM_MODEL
        self.client = client if client is not None else self._client()

    def _client(self) -> Any:
        if not (self.settings.LLM_BASE_URL and self.settings.LLM_MODEL):
            return None  # not configured: the rules decide, and the verdict says why
        import openai

        # No retries: a slow model is answered by the rules, not by waiting twice as long.
        return openai.OpenAI(base_url=self.settings.LLM_BASE_URL, api_key=self.settings.LLM_API_KEY or "none",
                             timeout=self.timeout, max_retries=0)

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def review(self, proposal: Decision, context: StrategyContext, lessons: Sequence[Lesson] = ()) -> Verdict:
        if self.client is None:
            return self._fall_back(proposal, context, lessons, "not configured (LLM_BASE_URL / LLM_MODEL)")
        try:
            chart = None
            frame = context.candles.get(context.interval)
            if self.attach_chart and frame is not None and len(frame) >= 2:
                chart = render_chart_png(frame, title=f"{context.symbol} {context.interval}",
                                         levels=context.levels, stop=proposal.stop_loss,
                                         take_profit=proposal.take_profit)
            messages = build_messages(self.stage, proposal, context, lessons, chart_png=chart)
        except Exception as exc:  # a chart or prompt bug must not stop trading decisions
            log.exception("building the LLM prompt failed")
            return self._fall_back(proposal, context, lessons, f"prompt error {type(exc).__name__}")
        content, failure = self._ask(messages)
        if failure:
            return self._fall_back(proposal, context, lessons, failure)
        parsed = parse_answer(content)
        if parsed is None:
            log.warning("LLM %s review answered something that is not the JSON schema: %.200r", self.stage, content)
            return self._fall_back(proposal, context, lessons, "garbage answer")
        approved, reason, confidence = parsed
        return Verdict(self.stage, self.name, approved, reason, confidence)

    def _ask(self, messages: list[dict[str, Any]]) -> tuple[str | None, str]:
        """(content, "") or (None, why it failed). Never longer than the timeout plus a grace."""
        box: dict[str, Any] = {}

        deadline = time.monotonic() + self.timeout
        formats = ({"type": "json_schema", "json_schema": {"name": f"{self.stage}_review", "strict": True,
                                                            "schema": ANSWER_SCHEMA}},
                   {"type": "json_object"})

        def call() -> None:
            import openai

            for i, fmt in enumerate(formats):
                try:
                    resp = self.client.chat.completions.create(
                        model=self.model, messages=messages, temperature=0, max_tokens=300, response_format=fmt,
                        timeout=max(0.1, deadline - time.monotonic()))
                    box["content"] = resp.choices[0].message.content if resp.choices else None
                    return
                except openai.BadRequestError as exc:
                    if i + 1 < len(formats):
                        # Servers without structured outputs refuse json_schema; a JSON object
                        # (checked against the schema here) is the next best thing.
                        continue
                    box["error"] = exc
                except Exception as exc:  # classified below; never leaves this thread
                    box["error"] = exc
                    return

        worker = threading.Thread(target=call, name=f"llm-{self.stage}-review", daemon=True)
        worker.start()
        worker.join(self.timeout + 2.0)  # both attempts share the one timeout, plus a grace
        if worker.is_alive():
            return None, "timeout"
        if "error" in box:
            return None, _classify(box["error"])
        return box.get("content"), ""

    def _fall_back(self, proposal: Decision, context: StrategyContext, lessons: Sequence[Lesson],
                   why: str) -> Verdict:
        v = self.fallback.review(proposal, context, lessons)
        log.warning("LLM %s review unavailable (%s); the rules decided: %s", self.stage, why, v.verdict)
        return Verdict(v.stage, f"rules (llm {why})", v.approved, v.reason, v.confidence, fallback=why)


def _classify(exc: BaseException) -> str:
    """A short, secret-free name for what went wrong (error texts may echo part of the key)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "down"
    if isinstance(exc, openai.APIStatusError):
        return f"http {exc.status_code}"
    if isinstance(exc, (openai.APIResponseValidationError, ValueError, TypeError, AttributeError)):
        return "garbage answer"
    return f"error {type(exc).__name__}"
