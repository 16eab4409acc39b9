"""Numbers and dates as Vietnamese alert summaries write them.

Vietnamese uses a decimal comma and a thousands dot (``78,5%``, ``3.140 học sinh``) and
day/month/year dates (``29/11/2026``). Pure helpers, shared by the subsystems' summaries.
"""

from __future__ import annotations

from datetime import date


def number_vi(value: float, digits: int = 0) -> str:
    """``3140`` → ``3.140``; ``2.25`` with 1 digit → ``2,2`` (Python's rounding of the float)."""
    text = f"{abs(value):,.{digits}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return ("-" if value < 0 and text.strip("0.,") else "") + text


def percent_vi(share: float, digits: int = 0) -> str:
    """``0.785`` → ``79%`` (``78,5%`` with 1 digit)."""
    return number_vi(share * 100, digits) + "%"


def date_vi(day: date) -> str:
    """``2026-11-29`` → ``29/11/2026``."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"
