"""The exception hierarchy every part of the bot raises and the ErrorHandler classifies.

Kept free of imports so that `config.py`, the data layer and the exchange adapters can all
raise these without import cycles. `bot/safety/error_handler.py` re-exports them.
"""

from __future__ import annotations

__all__ = [
    "BotError",
    "ConfigError",
    "DataError",
    "NetworkError",
    "ExchangeAPIError",
    "RateLimitError",
    "AuthError",
    "InsufficientFundsError",
    "OrderExecutionError",
    "InvalidOrderError",
    "DuplicateOrderError",
    "OutcomeUnknownError",
    "StrategyError",
    "RiskViolationError",
    "CheckpointError",
    "JournalError",
    "WalletInUseError",
]


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or has a value that is not allowed."""


class DataError(BotError):
    """Market data is malformed, inconsistent or unreadable."""


class NetworkError(BotError):
    """The exchange or another service could not be reached (timeout, refused, 5xx)."""


class ExchangeAPIError(BotError):
    """The exchange answered with an error code.

    `code` is the exchange's code (Bybit retCode, or the HTTP status for transport errors).
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RateLimitError(ExchangeAPIError):
    """The exchange says we are sending too many requests."""


class AuthError(ExchangeAPIError):
    """The API key or signature was refused; retrying will not help."""


class InsufficientFundsError(ExchangeAPIError):
    """Not enough balance or margin for the order."""


class OrderExecutionError(BotError):
    """An order could not be placed, or its outcome could not be confirmed."""

    def __init__(self, message: str, *, client_order_id: str | None = None) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class InvalidOrderError(OrderExecutionError):
    """The order breaks an instrument rule (precision, min qty, min notional) or a limit."""


class DuplicateOrderError(OrderExecutionError):
    """An order with this client order id already exists on the exchange."""


class OutcomeUnknownError(OrderExecutionError):
    """The order was sent and the exchange accepted it (or may have): what became of it is not
    known yet. It is journaled LOST and resolved by its client order id later; never send it again."""


class StrategyError(BotError):
    """The strategy or agent failed to produce a decision."""


class RiskViolationError(BotError):
    """A hard risk limit (daily loss, max drawdown) was broken; new entries must stop."""


class CheckpointError(BotError):
    """An agent checkpoint is corrupt or incompatible with the current features."""


class JournalError(BotError):
    """The SQLite journal is corrupt or cannot be written."""


class WalletInUseError(BotError):
    """The persisted paper wallet is being traded by another running bot process."""
