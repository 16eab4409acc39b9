"""The province situation level (1–5), computed from the alerts active at a moment.

Like the city-wide stage Rio de Janeiro's operations centre shows, one number tells the room
how the province is doing. It is computed, never typed in, from the alerts active at the moment
``at`` (an alert episode is active at ``at`` when it started at or before ``at`` and had not
ended by then, using the latest state of each episode in ``ioc.alerts FINAL``):

=====  ===================  ==============================================================
level  name (wall)          when
=====  ===================  ==============================================================
5      Khẩn cấp             critical situations in 3 or more subsystems, or 8 or more
                            critical situations
4      Báo động             critical situations in 2 subsystems, or 4 or more critical
                            situations
3      Chú ý                at least one critical situation, or 10 or more warning situations
2      Theo dõi             at least one warning situation
1      Bình thường          no warning or critical alert active (``info`` alerts never count)
=====  ===================  ==============================================================

A *situation* is a distinct (rule, area) pair with at least one active alert of that severity:
twenty overdue citizen reports in one district are one situation, not twenty, so a backlog of
items cannot push the province to "Khẩn cấp" on its own; a subsystem is the alert's ``domain``.

The SQL here is the single definition: the overview wall screen and the leadership briefing run
:func:`situation_sql`; the tests check every boundary of the table above against chDB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    level: int
    name_vi: str
    colour: str
    rule_vi: str


LEVELS: tuple[Level, ...] = (
    Level(1, "Bình thường", "green", "Không có cảnh báo nào đang bật."),
    Level(2, "Theo dõi", "blue", "Có ít nhất một tình huống cảnh báo."),
    Level(3, "Chú ý", "yellow",
          "Có tình huống nghiêm trọng, hoặc từ 10 tình huống cảnh báo trở lên."),
    Level(4, "Báo động", "orange",
          "Tình huống nghiêm trọng ở 2 lĩnh vực, hoặc từ 4 tình huống nghiêm trọng trở lên."),
    Level(5, "Khẩn cấp", "red",
          "Tình huống nghiêm trọng ở từ 3 lĩnh vực trở lên, hoặc từ 8 tình huống nghiêm trọng "
          "trở lên."),
)


def active_alerts_where(at: str, alias: str = "") -> str:
    """SQL condition: the alert episode (latest state, ``FINAL``) was active at ``at``."""
    p = f"{alias}." if alias else ""
    return (f"{p}starts_at <= {at} AND ({p}status = 'firing' OR {p}ends_at > {at}) "
            f"AND {p}severity IN ('warning', 'critical')")


def situation_sql(at: str = "$__toTime", database: str = "ioc") -> str:
    """One row: ``level`` (1–5), ``name`` (Vietnamese), the counts behind it."""
    names = ", ".join(f"'{lv.name_vi}'" for lv in LEVELS)
    return f"""
    -- Province situation level at {at} (rules: ioc.dashboards.situation).
    SELECT
        multiIf(critical_domains >= 3 OR critical >= 8, 5,
                critical_domains >= 2 OR critical >= 4, 4,
                critical >= 1 OR warning >= 10, 3,
                warning >= 1, 2,
                1) AS level,
        arrayElement([{names}], level) AS name,
        critical, warning, critical_domains
    FROM (
        SELECT
            uniqExactIf((rule, area_code), severity = 'critical') AS critical,
            uniqExactIf((rule, area_code), severity = 'warning') AS warning,
            uniqExactIf(domain, severity = 'critical') AS critical_domains
        FROM {database}.alerts FINAL
        WHERE {active_alerts_where(at)}
    )
"""
