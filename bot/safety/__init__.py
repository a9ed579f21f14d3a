"""Safety: what stands between a wish and a loss. `RiskManager` (account limits, stops, sizing
caps, vetoes; exits are never vetoed), `ErrorHandler` and its circuit breaker (classify, count,
stop new entries while exits keep working), and `supervise` (run the headless bot as a child
process and restart it after a crash, with backoff).

It imports config, alerts (the supervisor's restart alert) and the primitives; the engine and
the backtester's risk gate import it, so it may import neither. Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.safety.error_handler import ErrorHandler
    from bot.safety.risk import DAY_MS, RiskDecision, RiskManager
    from bot.safety.supervisor import supervise

__all__ = [
    "RiskManager", "RiskDecision", "DAY_MS", "ErrorHandler", "supervise",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "RiskManager": "risk", "RiskDecision": "risk", "DAY_MS": "risk",
    "ErrorHandler": "error_handler", "supervise": "supervisor",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
