"""What a person reads in the window: one short line in trader's words.

The engine's messages are written for the log (full detail, parts' names); the status bar and the
order form have one line each, so a message that does not fit loses its bracketed details first
(the log panel keeps them), then is cut at a word with an ellipsis. Messages that name a part's
method are said the way a trader would say them.
"""

from __future__ import annotations

import re

__all__ = ["one_line", "trader_words"]

# message written for developers -> what it means to a trader
_PLAIN = (
    (re.compile(r"paper exchange has no price for (\w+) yet: feed it a candle or set_price first"),
     r"no price for \1 yet: this session has no candles for it"),
    (re.compile(r"Bybit cannot be reached \(.*\); REPLAY of recorded real candles"),
     "Bybit cannot be reached: replaying recorded real candles"),
)
_BRACKETS = re.compile(r"\s*\((?=[^()]*\s)[^()]*\)")   # "(a detail like this)", never "trade(s)"


def trader_words(text: str) -> str:
    for pattern, plain in _PLAIN:
        text = pattern.sub(plain, text)
    return text


def one_line(text: str, limit: int) -> str:
    """`text` as one line of at most `limit` characters."""
    text = " ".join(trader_words(text).split())
    if len(text) > limit:
        text = _BRACKETS.sub("", text)
    if len(text) > limit:
        cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
        text = cut.rstrip(",;:") + "\u2026"
    return text
