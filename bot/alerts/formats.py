"""How the phone shows numbers: quantities without float noise, prices with their significant digits."""

from __future__ import annotations

__all__ = ["fmt_qty", "fmt_price"]


def fmt_qty(qty: float) -> str:
    """0.0016 -> '0.0016', 2.0 -> '2' (no float noise, no exponent)."""
    text = f"{abs(float(qty)):.8f}".rstrip("0").rstrip(".")
    return text or "0"


def fmt_price(price: float) -> str:
    """61234.5 -> '61,234.50'; prices below 1 keep their significant digits (0.0001234)."""
    p = float(price)
    if abs(p) >= 1:
        return f"{p:,.2f}"
    return f"{p:.8f}".rstrip("0").rstrip(".") or "0"
