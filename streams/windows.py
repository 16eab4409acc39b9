"""Tumbling event-time windows.

Windows shorter than a day are aligned to the Unix epoch in UTC (so 5m windows start at
:00, :05, …). Daily and longer windows start at midnight Asia/Ho_Chi_Minh, because that is the
day a provincial leader means; Vietnam has no daylight saving time, but the maths goes through
zoneinfo anyway so a deployment in another zone only changes ``LOCAL_TZ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WindowSpec:
    name: str
    size: timedelta

    def start_of(self, ts: datetime) -> datetime:
        if ts.tzinfo is None:
            raise ValueError("naive datetime: event time must be timezone-aware")
        if self.size >= timedelta(days=1):
            local = ts.astimezone(LOCAL_TZ)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            days = int(self.size / timedelta(days=1))
            # Multi-day windows count whole days from the epoch's local midnight.
            epoch_local = datetime(1970, 1, 1, tzinfo=LOCAL_TZ)
            offset_days = (midnight.date() - epoch_local.date()).days % days
            return (midnight - timedelta(days=offset_days)).astimezone(UTC)
        elapsed = ts.astimezone(UTC) - _EPOCH
        n = elapsed // self.size
        return _EPOCH + n * self.size

    def bounds(self, ts: datetime) -> tuple[datetime, datetime]:
        start = self.start_of(ts)
        if self.size >= timedelta(days=1):
            local_start = start.astimezone(LOCAL_TZ)
            end = (local_start + self.size).astimezone(UTC)
            return start, end
        return start, start + self.size


WINDOWS: dict[str, WindowSpec] = {
    spec.name: spec
    for spec in (
        WindowSpec("1m", timedelta(minutes=1)),
        WindowSpec("5m", timedelta(minutes=5)),
        WindowSpec("1h", timedelta(hours=1)),
        WindowSpec("1d", timedelta(days=1)),
        WindowSpec("7d", timedelta(days=7)),
        WindowSpec("30d", timedelta(days=30)),
    )
}
