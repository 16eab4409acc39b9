from datetime import UTC, datetime, timedelta

import pytest

from ioc.streams.windows import LOCAL_TZ, WINDOWS


def at(h: int, m: int = 0, s: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 11, day, h, m, s, tzinfo=UTC)


def test_minute_windows_align_to_the_minute() -> None:
    assert WINDOWS["1m"].bounds(at(7, 3, 59)) == (at(7, 3), at(7, 4))
    assert WINDOWS["1m"].bounds(at(7, 4)) == (at(7, 4), at(7, 5))  # start inclusive


def test_five_minute_and_hour_windows() -> None:
    assert WINDOWS["5m"].bounds(at(7, 14, 59)) == (at(7, 10), at(7, 15))
    assert WINDOWS["1h"].bounds(at(7, 59, 59)) == (at(7), at(8))


def test_daily_windows_cut_at_ho_chi_minh_midnight() -> None:
    # 16:59 UTC on 2 Nov is 23:59 local; 17:00 UTC is midnight local on 3 Nov.
    start, end = WINDOWS["1d"].bounds(at(16, 59))
    assert start == at(17, day=1) and end == at(17, day=2)
    start, end = WINDOWS["1d"].bounds(at(17, 0))
    assert start == at(17, day=2) and end - start == timedelta(days=1)
    assert start.astimezone(LOCAL_TZ).hour == 0


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        WINDOWS["1m"].start_of(datetime(2026, 11, 2, 7, 0))  # noqa: DTZ001
