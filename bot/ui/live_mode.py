"""Choosing live trading: what the user is told before real money is at stake.

Live needs three things at once (DESIGN.md): live chosen, keys present, and the user's explicit
confirmation. The confirmation states the balance at risk (read from Bybit on the command
thread, never on the Tk thread), the sizing rule in words, and the promotion gate's checklist.
When the gate has not passed, going live takes a second, typed confirmation naming the unmet
criteria (README: "Live trading"), journaled as a gate override with the consent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["sizing_rule", "live_confirmation", "read_live_balance", "read_live_facts"]


def sizing_rule(settings: Any) -> str:
    """The sizing rule in words, for the live-trading confirmation."""
    return (f"each trade uses {settings.POSITION_SIZE_PCT * 100:g} % of equity (at least "
            f"{settings.MIN_ORDER_USDT:g} USDT), loses at most {settings.MAX_RISK_PER_TRADE * 100:g} % of equity "
            f"to its stop-loss, all open positions together at most {settings.MAX_TOTAL_RISK * 100:g} %, "
            f"at most {settings.MAX_OPEN_POSITIONS} positions at once, leverage {settings.LEVERAGE:g}x; "
            f"new entries stop after a {settings.DAILY_LOSS_LIMIT * 100:g} % daily loss or a "
            f"{settings.MAX_DRAWDOWN * 100:g} % drawdown")


def live_confirmation(settings: Any, balance: str, checklist: str = "") -> str:
    """The text of the live-trading confirmation (`checklist`: the promotion gate's, in lines)."""
    gate = f"Promotion gate (the paper record):\n{checklist}\n\n" if checklist else ""
    return (f"Live trading sends REAL orders to Bybit.\n\nBalance at risk: {balance}.\n\n"
            f"Sizing rule: {sizing_rule(settings)}.\n\n{gate}Trade live with real money?")


def read_live_balance(settings: Any) -> float:
    """The Bybit account's USDT equity. Network: call it on the command thread."""
    from bot.engine.records import live_balance  # only when live is chosen

    return live_balance(settings)


def read_live_facts(settings: Any) -> tuple[float | Exception, Any]:
    """(the Bybit balance, or why it could not be read; the promotion gate's result on the paper
    record). Network and disk: call it on the command thread."""
    from bot.engine.promotion import paper_record_gate

    try:
        balance: float | Exception = read_live_balance(settings)
    except Exception as exc:
        balance = exc
    return balance, paper_record_gate(settings)
