"""Leadership briefings: ``ioc report --period day|week|month [--at DATE]``.

The People's Committee expects periodic reports; this renders one in Vietnamese as a
self-contained HTML file (charts embedded as PNG) and a PDF of the same HTML (WeasyPrint), from
ClickHouse only — the system of record — so a briefing can be re-made for any past period.

Contents, in order: the situation level at the end of the period (the same SQL as the wall,
:mod:`ioc.dashboards.situation`) and the alerts raised; one section per subsystem with its
headline figures against their targets or thresholds and a small chart over the period; the
alerts of the period by subsystem with how fast they were acknowledged and resolved; citizen
feedback handled on time by agency; and the notable episodes (critical or long alerts).

Periods are local (Asia/Ho_Chi_Minh): ``day`` is the local day of ``--at`` (default today),
``week`` the seven local days ending with it, ``month`` its calendar month; a period that is
not over yet ends now, and the briefing says so. A subsystem without data in the period says
"Không có dữ liệu trong kỳ" instead of inventing a figure.
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ioc.dashboards.overview import DOMAIN_VI
from ioc.dashboards.situation import LEVELS, situation_sql
from ioc.streams.windows import LOCAL_TZ

PERIODS = ("day", "week", "month")
PERIOD_VI = {"day": "ngày", "week": "tuần", "month": "tháng"}


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    first_day: date
    last_day: date
    complete: bool

    @property
    def label_vi(self) -> str:
        if self.kind == "day":
            return f"ngày {self.first_day:%d/%m/%Y}"
        if self.kind == "month":
            return f"tháng {self.first_day:%m/%Y}"
        return f"tuần từ {self.first_day:%d/%m} đến {self.last_day:%d/%m/%Y}"

    @property
    def bucket(self) -> str:
        """ClickHouse function cutting the period into chart buckets (local time)."""
        return "toStartOfHour" if self.kind == "day" else "toStartOfDay"


def period_for(kind: str, at: date, now: datetime) -> Period:
    """The local period of ``kind`` containing ``at`` (see the module docstring)."""
    if kind not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {kind!r}")
    if kind == "day":
        first, last = at, at
    elif kind == "week":
        first, last = at - timedelta(days=6), at
    else:
        first = at.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        last = nxt - timedelta(days=1)
    start = datetime(first.year, first.month, first.day, tzinfo=LOCAL_TZ).astimezone(UTC)
    stop = last + timedelta(days=1)
    end = datetime(stop.year, stop.month, stop.day, tzinfo=LOCAL_TZ).astimezone(UTC)
    if start >= now:
        raise ValueError(f"the {kind} of {at} has not started yet")
    complete = end <= now
    return Period(kind, start, min(end, now), first, last, complete)


# -- what a briefing holds --------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    value: str
    target: str = ""
    status: str = "none"  # ok | warn | bad | none


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    charts: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, PNG)
    table: tuple[list[str], list[list[str]]] | None = None
    empty: bool = False


@dataclass
class Briefing:
    province: str
    period: Period
    generated_at: datetime
    situation: tuple[int, str]
    sections: list[Section]


# -- queries ----------------------------------------------------------------------------------


class Query:
    """Runs SQL with the period's bounds and database filled in; rows as dicts."""

    def __init__(self, client: Any, db: str, period: Period) -> None:
        self.client, self.db, self.period = client, db, period

    def lit(self, t: datetime) -> str:
        return f"toDateTime64('{t.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}', 3, 'UTC')"

    def area_names(self) -> dict[str, str]:
        return {r["code"]: r["name_vi"] for r in
                self.rows("SELECT code, name_vi FROM {db}.ref_areas FINAL")}

    def rows(self, sql: str) -> list[dict[str, Any]]:
        text = (sql.replace("{db}", self.db)
                .replace("{start}", self.lit(self.period.start))
                .replace("{end}", self.lit(self.period.end))
                .replace("{bucket}", self.period.bucket))
        res = self.client.query(text)
        return [dict(zip(res.column_names, r, strict=True)) for r in res.result_rows]


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    return f"{x * 100:.{digits}f}".replace(".", ",") + " %"


def _num(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "—"
    text = f"{x:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def _minutes(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 120:
        return f"{x:.0f} phút"
    return f"{x / 60:.1f} giờ".replace(".", ",")


# -- charts -----------------------------------------------------------------------------------


def _chart(kind: str, xs: Sequence[Any], series: dict[str, Sequence[float]], *,
           target: float | None = None, percent: bool = False,
           horizontal_labels: bool = False) -> bytes:
    """A small PNG chart (matplotlib, Agg): bars or lines over the period's buckets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plt.rcParams["font.family"] = "DejaVu Sans"
    fig, ax = plt.subplots(figsize=(6.4, 2.2), dpi=110)
    colours = ["#1f6fb4", "#e8862a", "#2c9c4a", "#c0392b"]
    if kind == "barh":
        ax.barh(list(xs), list(next(iter(series.values()))), color=colours[0])
        ax.invert_yaxis()
    else:
        width = 0.8 / max(len(series), 1)
        for i, (name, ys) in enumerate(series.items()):
            if kind == "bar":
                pos = [j + (i - (len(series) - 1) / 2) * width for j in range(len(xs))]
                ax.bar(pos, list(ys), width=width, label=name, color=colours[i % 4])
            else:
                ax.plot(range(len(xs)), list(ys), marker="o", markersize=3, label=name,
                        color=colours[i % 4])
        step = max(1, len(xs) // 12)
        ax.set_xticks(range(0, len(xs), step))
        ax.set_xticklabels([str(x) for x in xs][::step], fontsize=7,
                           rotation=0 if horizontal_labels else 30)
        if len(series) > 1:
            ax.legend(fontsize=7, frameon=False, loc="upper left")
    if target is not None:
        if kind == "barh":
            ax.axvline(target, color="#c0392b", linestyle="--", linewidth=1)
        else:
            ax.axhline(target, color="#c0392b", linestyle="--", linewidth=1)
    if percent:
        fmt = FuncFormatter(lambda v, _: f"{v * 100:.0f}%")
        (ax.xaxis if kind == "barh" else ax.yaxis).set_major_formatter(fmt)
    ax.tick_params(labelsize=7)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _buckets(period: Period) -> list[datetime]:
    """Local bucket starts of the period (hours of a day, or days)."""
    out = []
    t = period.start.astimezone(LOCAL_TZ)
    step = timedelta(hours=1) if period.kind == "day" else timedelta(days=1)
    while t.astimezone(UTC) < period.end:
        out.append(t)
        t += step
    return out


def _bucket_label(period: Period, t: datetime) -> str:
    return f"{t:%H}h" if period.kind == "day" else f"{t:%d/%m}"


def _series(q: Query, sql: str, column: str, missing: float = 0.0
            ) -> tuple[list[str], list[float], bool]:
    """Values of ``column`` per bucket (``missing`` where a bucket has no row: 0 for counts,
    NaN — a gap in a line — for rates); whether any row came."""
    rows = q.rows(sql)
    by_bucket = {r["b"]: float(r[column]) for r in rows if r[column] is not None}
    labels, values = [], []
    for t in _buckets(q.period):
        key = t.strftime("%Y-%m-%d %H")
        labels.append(_bucket_label(q.period, t))
        values.append(by_bucket.get(key, missing))
    return labels, values, bool(rows)


def _local_bucket(expr: str) -> str:
    """The bucket of ``expr`` in local time, as text ``YYYY-MM-DD HH`` (text, so no client
    converts it back to another time zone)."""
    return (f"formatDateTime({{bucket}}(toTimeZone({expr}, 'Asia/Ho_Chi_Minh')), "
            f"'%Y-%m-%d %H', 'Asia/Ho_Chi_Minh')")


# -- sections ---------------------------------------------------------------------------------


def _overview(q: Query) -> Section:
    rows = q.rows("""
        SELECT count() AS raised, countIf(severity = 'critical') AS critical,
               countIf(status = 'resolved' AND ends_at < {end}) AS resolved
        FROM {db}.alerts FINAL
        WHERE starts_at >= {start} AND starts_at < {end} AND severity != 'info'
    """)[0]
    labels, values, _ = _series(q, f"""
        SELECT {_local_bucket('starts_at')} AS b, count() AS n
        FROM {{db}}.alerts FINAL
        WHERE starts_at >= {{start}} AND starts_at < {{end}} AND severity != 'info'
        GROUP BY b ORDER BY b
    """, "n")
    sec = Section("Tổng quan tình hình", figures=[
        Figure("Cảnh báo phát sinh", _num(rows["raised"])),
        Figure("Trong đó nghiêm trọng", _num(rows["critical"]),
               status="bad" if rows["critical"] else "ok"),
        Figure("Đã kết thúc trong kỳ", _num(rows["resolved"])),
    ])
    sec.charts.append(("Số cảnh báo phát sinh theo thời gian",
                       _chart("bar", labels, {"Cảnh báo": values})))
    return sec


def _traffic(q: Query) -> Section:
    labels, vehicles, any_rows = _series(q, f"""
        SELECT {_local_bucket('window_start')} AS b, sum(value) AS n
        FROM {{db}}.kpi FINAL
        WHERE kpi = 'traffic.vehicle_count' AND `window` = '1h'
          AND window_start >= {{start}} AND window_start < {{end}}
        GROUP BY b ORDER BY b
    """, "n")
    if not any_rows:
        return Section("Giao thông", empty=True)
    alerts = q.rows("""
        SELECT countIf(rule = 'traffic.congestion') AS congestion,
               countIf(rule = 'traffic.critical_incident') AS incidents
        FROM {db}.alerts FINAL
        WHERE domain = 'traffic' AND starts_at >= {start} AND starts_at < {end}
    """)[0]
    sec = Section("Giao thông", figures=[
        Figure("Lượt xe qua các điểm đo", _num(sum(vehicles))),
        Figure("Đợt ùn tắc", _num(alerts["congestion"]),
               status="warn" if alerts["congestion"] else "ok"),
        Figure("Sự cố giao thông nghiêm trọng", _num(alerts["incidents"]),
               status="bad" if alerts["incidents"] else "ok"),
    ])
    sec.charts.append(("Lượt xe theo thời gian", _chart("bar", labels, {"Lượt xe": vehicles})))
    return sec


def _counted(q: Query, title: str, kpi: str, window: str, label: str, unit_label: str,
             warn_from: float | None = None) -> Section:
    labels, values, any_rows = _series(q, f"""
        SELECT {_local_bucket('window_start')} AS b, sum(value) AS n
        FROM {{db}}.kpi FINAL
        WHERE kpi = '{kpi}' AND `window` = '{window}'
          AND window_start >= {{start}} AND window_start < {{end}}
        GROUP BY b ORDER BY b
    """, "n")
    if not any_rows:
        return Section(title, empty=True)
    total = sum(values)
    status = "none" if warn_from is None else ("warn" if total >= warn_from else "ok")
    sec = Section(title, figures=[Figure(label, _num(total), status=status)])
    sec.charts.append((f"{unit_label} theo thời gian", _chart("bar", labels,
                                                               {unit_label: values})))
    return sec


def _security(q: Query) -> Section:
    sec = _counted(q, "An ninh trật tự", "security.incidents", "1h", "Vụ việc ghi nhận",
                   "Vụ việc")
    if not sec.empty:
        crit = q.rows("""
            SELECT count() AS n FROM {db}.alerts FINAL
            WHERE rule = 'security.critical_incident'
              AND starts_at >= {start} AND starts_at < {end}
        """)[0]["n"]
        sec.figures.append(Figure("Vụ việc nghiêm trọng", _num(crit),
                                  status="bad" if crit else "ok"))
    return sec


def _rate_section(q: Query, title: str, kpi: str, window: str, label: str, target: float,
                  higher_is_better: bool = True, by: str = "entity",
                  by_label: str = "Đơn vị", where: str = "1") -> Section:
    """A rate KPI (weighted by ``sample_count``): the period's value against ``target``, a
    line over the period, and the latest value per ``by`` in a table."""
    labels, values, any_rows = _series(q, f"""
        SELECT {_local_bucket('window_start')} AS b,
               sum(value * sample_count) / nullIf(sum(sample_count), 0) AS v
        FROM {{db}}.kpi FINAL
        WHERE kpi = '{kpi}' AND `window` = '{window}' AND {where}
          AND window_end > {{start}} AND window_end <= {{end}} + INTERVAL 1 DAY
          AND window_start < {{end}}
        GROUP BY b ORDER BY b
    """, "v", missing=float("nan"))
    if not any_rows:
        return Section(title, empty=True)
    latest = q.rows(f"""
        SELECT {by} AS k, argMax(value, window_end) AS v, argMax(sample_count, window_end) AS n
        FROM {{db}}.kpi FINAL
        WHERE kpi = '{kpi}' AND `window` = '{window}' AND {where} AND window_start < {{end}}
          AND window_end > {{start}}
        GROUP BY k ORDER BY v {'ASC' if higher_is_better else 'DESC'}
    """)
    total_n = sum(r["n"] for r in latest)
    overall = (sum(r["v"] * r["n"] for r in latest) / total_n) if total_n else None

    def good(v: float | None) -> str:
        if v is None:
            return "none"
        return "ok" if (v >= target if higher_is_better else v < target) else "bad"

    sec = Section(title, figures=[Figure(label, _pct(overall),
                                         f"mục tiêu {'≥' if higher_is_better else '<'} "
                                         f"{_pct(target, 0)}", good(overall))])
    sec.charts.append((f"{label} theo thời gian",
                       _chart("line", labels, {label: values}, target=target, percent=True)))
    names = q.area_names() if by == "area_code" else {}
    sec.table = ([by_label, label, "Số mẫu"],
                 [[names.get(str(r["k"]), str(r["k"] or "Toàn tỉnh")), _pct(r["v"]),
                   _num(r["n"])] for r in latest[:12]])
    return sec


def _econ(q: Query) -> Section:
    """Province figures of the plan year at the end of the period: year to date against the
    annual target and the pro-rata plan."""
    rows = q.rows("""
        SELECT k.entity AS code, any(i.name_vi) AS name, any(i.unit) AS unit,
               argMaxIf(k.value, k.window_end, k.kpi = 'econ.ytd_value') AS ytd,
               argMaxIf(k.value, k.window_end, k.kpi = 'econ.progress') AS progress,
               argMaxIf(k.value, k.window_end, k.kpi = 'econ.elapsed_share') AS elapsed,
               countIf(k.kpi = 'econ.progress') > 0 AS has_target
        FROM {db}.kpi AS k FINAL
        LEFT JOIN {db}.ref_econ_indicators AS i FINAL ON i.code = k.entity
        WHERE k.kpi IN ('econ.ytd_value', 'econ.progress', 'econ.elapsed_share')
          AND k.area_code = '' AND k.`window` = 'ytd' AND k.window_start < {end}
          AND toYear(toTimeZone(k.window_start, 'Asia/Ho_Chi_Minh'))
              = toYear(toTimeZone({end} - INTERVAL 1 SECOND, 'Asia/Ho_Chi_Minh'))
        GROUP BY code ORDER BY code
    """)
    if not rows:
        return Section("Kinh tế – xã hội", empty=True)
    behind = q.rows("""
        SELECT count() AS n FROM {db}.alerts FINAL
        WHERE rule = 'econ.behind_plan' AND starts_at <= {end}
          AND (status = 'firing' OR ends_at > {end})
    """)[0]["n"]
    sec = Section("Kinh tế – xã hội", figures=[
        Figure("Chỉ tiêu chậm tiến độ (tỉnh và địa phương)", _num(behind),
               status="bad" if behind else "ok")])
    with_target = [r for r in rows if r["has_target"]]
    if with_target:
        sec.charts.append(("Tiến độ thực hiện so với kế hoạch năm (đường đỏ: tiến độ theo thời "
                           "gian)", _chart("barh", [r["name"] or r["code"] for r in with_target],
                                          {"Tiến độ": [r["progress"] for r in with_target]},
                                          target=max(r["elapsed"] for r in with_target) or None,
                                          percent=True)))
    sec.table = (["Chỉ tiêu", "Lũy kế năm", "Đơn vị", "Đạt so với kế hoạch"],
                 [[r["name"] or r["code"], _num(r["ytd"], 1), r["unit"] or "",
                   _pct(r["progress"]) if r["has_target"] else "—"] for r in rows])
    return sec


def _health(q: Query) -> Section:
    cases = q.rows("""
        SELECT entity AS disease, sum(value) AS n
        FROM {db}.kpi FINAL
        WHERE kpi = 'health.cases' AND `window` = '1d'
          AND window_start >= {start} AND window_start < {end}
        GROUP BY disease ORDER BY n DESC
    """)
    beds = q.rows("""
        SELECT sum(occ) / nullIf(sum(total), 0) AS occupancy, max(rate) AS worst
        FROM (
            SELECT entity, argMax(value * sample_count, window_end) AS occ,
                   argMax(sample_count, window_end) AS total, argMax(value, window_end) AS rate
            FROM {db}.kpi FINAL
            WHERE kpi = 'health.bed_occupancy' AND window_end <= {end}
              AND window_end > {start} - INTERVAL 1 DAY
            GROUP BY entity)
    """)[0]
    outbreaks = q.rows("""
        SELECT count() AS n FROM {db}.alerts FINAL
        WHERE rule = 'health.outbreak' AND starts_at < {end}
          AND (status = 'firing' OR ends_at > {start})
    """)[0]["n"]
    if not cases and beds["occupancy"] is None:
        return Section("Y tế", empty=True)
    from ioc.streams.health import DISEASE_VI

    sec = Section("Y tế", figures=[
        Figure("Công suất giường bệnh cuối kỳ", _pct(beds["occupancy"]), "cảnh báo từ 90 %",
               "ok" if (beds["worst"] or 0) < 0.9 else "warn"),
        Figure("Ca bệnh truyền nhiễm trong kỳ", _num(sum(r["n"] for r in cases))),
        Figure("Ổ dịch được cảnh báo", _num(outbreaks), status="bad" if outbreaks else "ok"),
    ])
    if cases:
        sec.charts.append(("Ca bệnh trong kỳ theo bệnh",
                           _chart("barh", [DISEASE_VI.get(r["disease"], r["disease"])
                                           for r in cases[:8]],
                                  {"Ca bệnh": [r["n"] for r in cases[:8]]})))
    return sec


def _alerts_table(q: Query) -> Section:
    # Acknowledgements: the notifier's ack log (``alert_acks``: ``ioc alerts ack`` or an ack
    # link), the first one of each episode.
    rows = q.rows("""
        SELECT a.domain AS domain, count() AS raised,
               countIf(a.severity = 'critical') AS critical,
               countIf(k.alert_id != '') AS acked,
               groupArrayIf(dateDiff('second', a.starts_at, k.first_acked_at) / 60,
                            k.alert_id != '') AS tta,
               groupArrayIf(dateDiff('second', a.starts_at, a.ends_at) / 60,
                            a.status = 'resolved' AND a.ends_at IS NOT NULL) AS ttr
        FROM {db}.alerts AS a FINAL
        LEFT JOIN {db}.alert_acks AS k FINAL
            ON k.alert_id = a.alert_id AND k.starts_at = a.starts_at
        WHERE a.starts_at >= {start} AND a.starts_at < {end} AND a.severity != 'info'
        GROUP BY a.domain ORDER BY raised DESC
    """)
    sec = Section("Cảnh báo trong kỳ và thời gian xử lý")
    if not rows:
        sec.empty = True
        return sec

    def median(xs: list[float]) -> float | None:
        return statistics.median(xs) if xs else None

    sec.table = (["Lĩnh vực", "Phát sinh", "Nghiêm trọng", "Đã xác nhận",
                  "Xác nhận sau (trung vị)", "Kết thúc sau (trung vị)"],
                 [[DOMAIN_VI.get(r["domain"], r["domain"]), _num(r["raised"]),
                   _num(r["critical"]), _num(r["acked"]), _minutes(median(list(r["tta"]))),
                   _minutes(median(list(r["ttr"])))] for r in rows])
    return sec


def _episodes(q: Query) -> Section:
    rows = q.rows("""
        SELECT domain, severity, summary, starts_at, ends_at, status
        FROM {db}.alerts FINAL
        WHERE starts_at >= {start} AND starts_at < {end} AND severity = 'critical'
        ORDER BY coalesce(ends_at, {end}) - starts_at DESC, starts_at
        LIMIT 10
    """)
    sec = Section("Sự việc đáng chú ý")
    if not rows:
        sec.empty = True
        return sec

    def when(t: datetime | None) -> str:
        return "đang diễn ra" if t is None else f"{t.astimezone(LOCAL_TZ):%H:%M %d/%m}"

    sec.table = (["Lĩnh vực", "Nội dung", "Bắt đầu", "Kết thúc"],
                 [[DOMAIN_VI.get(r["domain"], r["domain"]), r["summary"],
                   when(r["starts_at"]), when(r["ends_at"] if r["status"] == "resolved"
                                              else None)] for r in rows])
    return sec


SECTIONS: tuple[Callable[[Query], Section], ...] = (
    _overview,
    _traffic,
    _security,
    lambda q: _counted(q, "Thông tin trên mạng", "cyber.mentions", "1h", "Lượt đề cập",
                       "Lượt đề cập"),
    lambda q: _rate_section(q, "Chính quyền điện tử", "egov.on_time_rate", "30d",
                            "Hồ sơ đúng hạn", 0.95, by_label="Cơ quan"),
    _econ,
    _health,
    lambda q: _rate_section(q, "Giáo dục", "edu.attendance_rate", "1d", "Tỷ lệ chuyên cần",
                            0.85, by="area_code", by_label="Địa bàn", where="entity = ''"),
    lambda q: _rate_section(q, "Phản ánh kiến nghị", "feedback.on_time_rate", "30d",
                            "Phản ánh xử lý đúng hạn", 0.9, by_label="Cơ quan"),
    _alerts_table,
    _episodes,
)
"""Sections in reading order; each returns an ``empty`` section when it has no data."""


def collect(client: Any, db: str, period: Period, now: datetime | None = None) -> Briefing:
    q = Query(client, db, period)
    province = q.rows("SELECT name_vi FROM {db}.ref_areas FINAL WHERE level = 'province' "
                      "ORDER BY code LIMIT 1")
    sit = q.rows(situation_sql(q.lit(period.end), database=db))
    level = int(sit[0]["level"]) if sit else 1
    return Briefing(
        province=province[0]["name_vi"] if province else "",
        period=period, generated_at=now or datetime.now(UTC),
        situation=(level, LEVELS[level - 1].name_vi),
        sections=[make(q) for make in SECTIONS])


# -- rendering --------------------------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 16mm 14mm; @bottom-right { content: "Trang " counter(page) "/"
  counter(pages); font-family: "DejaVu Sans", sans-serif; font-size: 8pt; color: #666; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; color: #1b1b1b; }
h1 { font-size: 16pt; margin: 0 0 2mm; color: #12355b; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; color: #12355b; border-bottom: 1px solid #c9d6e3;
  padding-bottom: 1mm; page-break-after: avoid; }
.meta { color: #555; font-size: 9pt; }
.level { display: inline-block; padding: 2mm 4mm; border-radius: 2mm; color: #fff;
  font-weight: bold; font-size: 13pt; margin: 3mm 0; }
.figures { display: flex; flex-wrap: wrap; gap: 3mm; }
.fig { border: 1px solid #d5dde6; border-radius: 1.5mm; padding: 2mm 3mm; min-width: 40mm; }
.fig .v { font-size: 14pt; font-weight: bold; }
.fig .l { font-size: 8.5pt; color: #444; }
.fig .t { font-size: 8pt; color: #666; }
.ok .v { color: #1e7b34; } .warn .v { color: #b86e00; } .bad .v { color: #b3261e; }
img { width: 100%; max-width: 170mm; margin-top: 2mm; }
.caption { font-size: 8pt; color: #555; }
table { border-collapse: collapse; width: 100%; margin-top: 2mm; font-size: 8.5pt; }
th, td { border: 1px solid #d5dde6; padding: 1mm 2mm; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
.empty { color: #777; font-style: italic; }
section { page-break-inside: avoid; }
"""

_LEVEL_COLOUR = {"green": "#2c9c4a", "blue": "#1f6fb4", "yellow": "#c9a000",
                 "orange": "#e8862a", "red": "#c0392b"}


def render_html(b: Briefing) -> str:
    e = html.escape
    level = LEVELS[b.situation[0] - 1]
    parts = [
        "<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>",
        f"<title>Báo cáo tình hình {e(b.period.label_vi)}</title><style>{_CSS}</style>"
        "</head><body>",
        f"<h1>BÁO CÁO TÌNH HÌNH {e(PERIOD_VI[b.period.kind].upper())} – "
        f"{e(b.province.upper())}</h1>",
        f"<div class='meta'>Kỳ báo cáo: {e(b.period.label_vi)}"
        + ("" if b.period.complete else
           f" (tính đến {b.period.end.astimezone(LOCAL_TZ):%H:%M %d/%m/%Y}, kỳ chưa kết thúc)")
        + f" · Lập lúc {b.generated_at.astimezone(LOCAL_TZ):%H:%M %d/%m/%Y} "
        "bởi Trung tâm Giám sát, điều hành thông minh (IOC)</div>",
        f"<div class='level' style='background:{_LEVEL_COLOUR[level.colour]}'>"
        f"Mức độ tình hình cuối kỳ: {level.level} – {e(level.name_vi)}</div>"
        f"<div class='meta'>{e(level.rule_vi)}</div>",
    ]
    for sec in b.sections:
        parts.append(f"<section><h2>{e(sec.title)}</h2>")
        if sec.empty:
            parts.append("<p class='empty'>Không có dữ liệu trong kỳ.</p></section>")
            continue
        if sec.figures:
            parts.append("<div class='figures'>")
            for f in sec.figures:
                parts.append(f"<div class='fig {f.status}'><div class='v'>{e(f.value)}</div>"
                             f"<div class='l'>{e(f.label)}</div>"
                             + (f"<div class='t'>{e(f.target)}</div>" if f.target else "")
                             + "</div>")
            parts.append("</div>")
        for caption, png in sec.charts:
            data = base64.b64encode(png).decode()
            parts.append(f"<img alt='{e(caption)}' src='data:image/png;base64,{data}'>"
                         f"<div class='caption'>{e(caption)}</div>")
        if sec.table:
            head, rows = sec.table
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_pdf(html_text: str, path: Path) -> None:
    import weasyprint

    weasyprint.HTML(string=html_text).write_pdf(str(path))


def make_report(client: Any, db: str, kind: str, at: date, out_dir: Path,
                now: datetime | None = None) -> tuple[Path, Path]:
    """Collect, render and write ``bao-cao-<kind>-<date>.html`` and ``.pdf``; return paths."""
    now = now or datetime.now(UTC)
    period = period_for(kind, at, now)
    briefing = collect(client, db, period, now)
    text = render_html(briefing)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bao-cao-{kind}-{period.last_day:%Y-%m-%d}"
    html_path = out_dir / f"{stem}.html"
    pdf_path = out_dir / f"{stem}.pdf"
    html_path.write_text(text, encoding="utf-8")
    write_pdf(text, pdf_path)
    return html_path, pdf_path
