"""Simulated citizen reports and their lifecycles: pure, deterministic, no personal data out.

Like the other simulators, no Kafka and no sleeping: ``events_at(now, interval_s)`` returns the
``ioc.feedback.report.v1`` events whose event time falls in ``(now − interval_s, now]``, sorted
by time, as :class:`~ioc.connectors.simulator.SimEvent` values keyed by ``report_id``.

The model (approximate figures chosen for the demo, not statistics):

* **Submissions** — a Poisson process at ``report_rate_per_day`` (80 for the province) shaped by
  the local hour (few at night, peaks in the morning and mid-afternoon, some in the evening) and
  the weekday (Saturday 0.8, Sunday 0.6), placed on the district-level areas in proportion to
  population. Categories by season (Asia/Ho_Chi_Minh month): in the Sep–Dec rainy season
  flooding is five times as common and road damage 1.5 times; in the hot Apr–Aug months water
  supply, noise and waste are more common. Channels: app 35 %, hotline 30 %, web 15 %, field
  officers 15 %, Open311 5 %.
* **Lifecycle** — assigned to the category's agency (``feedback_categories.csv``) within hours
  (office hours 07:00–17:00; a report of the night is assigned the next morning) with a due
  time ``due_days`` later (3–15 days by category); in progress a few hours after; then 88 %
  resolved on time (within 15–95 % of the allowed time), 8 % resolved late (102–150 %), 4 %
  rejected; 3 % are rejected at once instead of assigned. Work happens in the daytime. 60 % of
  resolved reports are rated, higher when on time. Later steps are sent by the agency (its code
  as ``source``).
* **Reporters** — every citizen report has a generated Vietnamese name and mobile number (a
  quarter of them from a pool of repeat reporters), a tenth are anonymous; field-officer reports
  have none. Some descriptions quote the citizen's number. Each report goes through
  :func:`ioc.connectors.privacy.protect_report` **before** it becomes an event: events carry
  only ``reporter_pseudonym`` and masked text, exactly like a file sent with ``ioc produce``.
  The key: ``ioc simulate`` calls :meth:`FeedbackSimulator.configure` with the settings, so the
  deployment's key (``IOC_PSEUDONYM_KEY`` or ``$IOC_DATA_DIR/pseudonym.key``) is used; without
  it (tests, Kafka-free loaders) a key derived from the seed stands in — the reporters are
  fictitious either way.

Anchoring, backfill and episodes: the first call anchors the simulation at the start of its
interval (``anchor``). The simulated world starts ``backfill`` (8 days) before the anchor, and
the first call also returns every event of that world up to its ``now`` — about 600 reports
and 2,000 events of history, so day-long rules have something to show. Scripted on top
(``episodes=True``), in seed-chosen areas:

* **Flooding surge** — nine flooding reports in one area at anchor + 2, 3, 5, 6, 8, 10, 12, 13
  and 14 minutes (each 0–59 s into its minute): ``feedback.surge`` fires at the minute after the
  fifth (anchor + 9 min) and resolves when the fifth leaves the sliding hour, at
  anchor + 69 min (later only if ordinary flooding reports of that area fall in the hour).
* **Overdue reports in the backfill** — one report 4 days 18 hours past due (critical), one
  about a day past due (warning), both still open; one 1 day 8 hours past due that is resolved
  live at anchor + 10 min (its alert resolves); one whose due time falls at anchor + 20 min
  (its alert fires live). Randomly late reports add fired-and-resolved episodes to the history.

Determinism: draws are seeded from ``(seed, what, UTC hour)`` and ``(seed, report id)``, the
scripted part from the anchor, so the same seed and anchor give the same events and ids
(``PA{seed}-{local yymmdd-HH}{n}`` for reports, ``{report_id}-{k}-{status}`` for steps); a
replay is deduplicated downstream. The pseudonyms depend on the key too.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ioc.connectors.privacy import protect_report, pseudonym_key
from ioc.connectors.simulator import LOCAL_TZ, SimEvent, _poisson, from_epoch_ms, to_epoch_ms
from ioc.infra.reference import Area
from ioc.infra.reference_feedback import FeedbackAgency, FeedbackCategory
from ioc.infra.settings import Settings

REPORT_TOPIC = "ioc.feedback.report.v1"

_HOUR_MS = 3_600_000
_H = timedelta(hours=1)
_D = timedelta(days=1)
_M = timedelta(minutes=1)
MAX_LIFE = timedelta(days=30)
"""No report of the model has steps later than this after its submission."""

# Share of the day's reports by local hour.
_PROFILE = (0.15, 0.1, 0.08, 0.08, 0.1, 0.3, 0.8, 1.4, 1.9, 2.0, 1.8, 1.4,
            1.0, 1.1, 1.6, 1.8, 1.6, 1.3, 1.0, 1.0, 0.9, 0.7, 0.4, 0.25)
_PROFILE_MEAN = sum(_PROFILE) / 24
_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6)
_CHANNELS = {"app": 0.35, "hotline": 0.30, "web": 0.15, "field_officer": 0.15, "open311": 0.05}
_CATEGORY_WEIGHTS = {"waste": 0.18, "road_damage": 0.14, "lighting": 0.12,
                     "water_supply": 0.08, "noise": 0.10, "land": 0.07, "construction": 0.08,
                     "environment": 0.08, "public_order": 0.07, "flooding": 0.03,
                     "other": 0.05}
_RAINY = {"flooding": 5.0, "road_damage": 1.5, "environment": 1.2}
_HOT = {"water_supply": 1.6, "noise": 1.2, "waste": 1.2}
_RATINGS_ON_TIME = {5: 0.45, 4: 0.30, 3: 0.15, 2: 0.06, 1: 0.04}
_RATINGS_LATE = {5: 0.10, 4: 0.20, 3: 0.30, 2: 0.20, 1: 0.20}
INTAKE_SOURCE = "TTGSDH-QNA"
"""Agency code of the province's feedback intake (the smart-city operations centre)."""

_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "flooding": ("Nước ngập sâu khoảng 0,5 m, xe máy không qua được",
                 "Cống thoát nước bị tắc, mưa lớn gây ngập khu dân cư",
                 "Nước tràn vào nhà dân sau mưa lớn, đề nghị hỗ trợ"),
    "waste": ("Rác thải tồn đọng nhiều ngày chưa được thu gom, bốc mùi hôi",
              "Có người đổ trộm rác thải xây dựng ven đường",
              "Điểm tập kết rác tràn ra lòng đường"),
    "road_damage": ("Mặt đường bị lún, xuất hiện nhiều ổ gà gây nguy hiểm",
                    "Nắp hố ga bị vỡ giữa đường",
                    "Đường bê tông bị sụt lún sau mưa"),
    "lighting": ("Đèn chiếu sáng công cộng không sáng cả tuyến đường",
                 "Cột đèn bị nghiêng, có nguy cơ đổ",
                 "Đèn đường sáng cả ban ngày, lãng phí điện"),
    "water_supply": ("Mất nước sinh hoạt từ sáng đến nay",
                     "Nước máy có màu đục, có mùi lạ",
                     "Đường ống cấp nước bị vỡ, nước chảy tràn ra đường"),
    "noise": ("Quán karaoke hát lớn sau 22 giờ gây mất trật tự",
              "Công trình thi công ban đêm gây tiếng ồn lớn",
              "Loa kẹo kéo mở quá lớn ở khu dân cư"),
    "land": ("Tranh chấp ranh giới đất giữa hai hộ dân",
             "Lấn chiếm đất công làm quán kinh doanh",
             "Chậm cấp giấy chứng nhận quyền sử dụng đất"),
    "construction": ("Công trình xây dựng không có giấy phép",
                     "Xây dựng lấn chiếm vỉa hè",
                     "Vật liệu xây dựng để tràn lòng đường"),
    "environment": ("Cơ sở sản xuất xả nước thải chưa qua xử lý ra kênh",
                    "Khói bụi từ lò gạch ảnh hưởng khu dân cư",
                    "Cá chết hàng loạt trên sông, nghi do ô nhiễm"),
    "public_order": ("Nhóm thanh niên tụ tập gây mất trật tự về đêm",
                     "Buôn bán lấn chiếm lòng đường gây ùn tắc",
                     "Nghi có đối tượng trộm cắp hoạt động trong khu dân cư"),
    "other": ("Đề nghị lắp đặt biển báo giao thông tại ngã ba",
              "Cây xanh gãy đổ sau gió lớn",
              "Kiến nghị về thủ tục hành chính chậm giải quyết"),
}
_PLACES = ("Tổ dân phố 1", "Tổ dân phố 4", "Khối phố 2", "Khối phố 6", "Thôn 1", "Thôn 3",
           "Thôn 5", "Đường Hùng Vương", "Đường Phan Châu Trinh", "Đường Trần Phú",
           "Đường Nguyễn Duy Hiệu", "Đường Lê Lợi", "Chợ trung tâm", "Khu dân cư số 2")
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Võ", "Phan", "Trương", "Đặng",
           "Bùi", "Đỗ", "Ngô", "Đinh")
_MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Đức", "Thanh", "Hữu", "Thị Kim", "Công", "Quốc")
_GIVEN = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hoa", "Hùng", "Lan", "Linh", "Nam",
          "Phúc", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Sơn", "Khánh", "Yến")
_MOBILE_PREFIXES = ("090", "091", "093", "094", "096", "097", "098", "086", "088", "032",
                    "035", "037", "039", "070", "077", "079", "081", "083", "085", "056")

SURGE_MINUTES = (2, 3, 5, 6, 8, 10, 12, 13, 14)
"""Minutes after the anchor at which the scripted flooding reports come in."""


@dataclass(frozen=True)
class ScriptedReport:
    """A report of the backfill episode: due ``due`` after the anchor (negative: in the past),
    resolved ``resolved`` after the anchor if given."""

    category: str
    due: timedelta
    resolved: timedelta | None
    note: str


BACKFILL_OVERDUE = (
    ScriptedReport("public_order", -(4 * _D + 18 * _H), None, "critical: > 3 days past due"),
    ScriptedReport("waste", -(_D + 2 * _H), None, "warning"),
    ScriptedReport("water_supply", -(_D + 8 * _H), 10 * _M, "resolved live"),
    ScriptedReport("flooding", 20 * _M, None, "becomes overdue live"),
)


def _choose(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ms(t: datetime) -> datetime:
    """``t`` to the millisecond (event times are timestamp-millis on the wire)."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _local(t: datetime) -> datetime:
    return t.astimezone(LOCAL_TZ)


def _daytime(rng: random.Random, t: datetime) -> datetime:
    """``t``, or the next working hours (07:30–17:00 local) if it falls at night."""
    local = _local(t)
    if 7 <= local.hour < 17:
        return t
    day = local if local.hour >= 17 else local - _D
    morning = (day + _D).replace(hour=7, minute=30, second=0, microsecond=0)
    return morning + timedelta(seconds=rng.randrange(0, 3 * 3600))


class FeedbackSimulator:
    def __init__(self, areas: Mapping[str, Area], categories: Mapping[str, FeedbackCategory],
                 agencies: Mapping[str, FeedbackAgency], seed: int = 0, *,
                 pseudonym_key: bytes | None = None, report_rate_per_day: float = 80.0,
                 backfill: timedelta = timedelta(days=8), episodes: bool = True) -> None:
        local = {c: a for c, a in sorted(areas.items()) if a.level != "province"}
        if not local:
            raise ValueError("the feedback simulator needs at least one sub-provincial area")
        if not categories:
            raise ValueError("the feedback simulator needs report categories")
        if report_rate_per_day < 0:
            raise ValueError("report_rate_per_day must be >= 0")
        self.areas = local
        self.categories = dict(sorted(categories.items()))
        self.agencies = agencies
        self.seed = seed
        self.key = pseudonym_key or hashlib.sha256(f"ioc-simulation|{seed}".encode()).digest()
        self.rate = report_rate_per_day
        self.backfill = backfill
        self.episodes = episodes
        self._area_weights = {c: float(max(a.population, 1)) for c, a in local.items()}
        rng = random.Random(f"{seed}|feedback|reporters")
        self._repeaters = [self._person(rng) for _ in range(200)]
        self.anchor: datetime | None = None
        self.world_start: datetime | None = None
        self.surge_area: str | None = None
        self.scripted: list[str] = []  # report ids of the backfill episode, in BACKFILL order
        self._by_hour: dict[int, list[SimEvent]] = {}
        self._generated_to = -1  # submission hours generated so far (inclusive)
        self._served_to = -1  # event hours already handed out in full

    def configure(self, settings: Settings) -> None:
        """Use the deployment's pseudonym key (``ioc simulate`` calls this before any event)."""
        if self.anchor is not None:
            raise RuntimeError("configure the simulator before its first call")
        self.key = pseudonym_key(settings)

    # -- people and text ---------------------------------------------------------------------
    def _person(self, rng: random.Random) -> tuple[str, str]:
        name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
        digits = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
        style = rng.random()
        if style < 0.5:
            phone = f"{digits[:4]} {digits[4:7]} {digits[7:]}"
        elif style < 0.8:
            phone = digits
        else:
            phone = "+84" + digits[1:]
        return name, phone

    def _reporter(self, rng: random.Random, channel: str) -> tuple[str, str]:
        if channel == "field_officer" or rng.random() < 0.1:
            return "", ""
        if rng.random() < 0.25:
            return rng.choice(self._repeaters)
        return self._person(rng)

    def _description(self, rng: random.Random, category: str, phone: str) -> str:
        text = rng.choice(_DESCRIPTIONS.get(category, _DESCRIPTIONS["other"]))
        if phone and rng.random() < 0.12:
            text += f". Liên hệ lại cho tôi qua số {phone}"
        return text + "."

    # -- the world ---------------------------------------------------------------------------
    def _category(self, rng: random.Random, at: datetime) -> str:
        month = _local(at).month
        season = _RAINY if month >= 9 else _HOT if 4 <= month <= 8 else {}
        weights = {c: _CATEGORY_WEIGHTS.get(c, 0.03) * season.get(c, 1.0)
                   for c in self.categories}
        return str(_choose(rng, weights))

    def _report(self, rid: str, submitted: datetime, area: str, category: str, *,
                due: datetime | None = None, resolved: datetime | None = None,
                open_until_due: bool = False, channel: str | None = None) -> list[SimEvent]:
        """All steps of one report. Without ``due`` the lifecycle is drawn from the model;
        with it (scripted reports), the report is assigned two hours after submission with that
        due time, in progress three hours later, and resolved at ``resolved`` if given."""
        rng = random.Random(f"{self.seed}|feedback|{rid}")
        cat = self.categories.get(category) or next(iter(self.categories.values()))
        channel = channel or str(_choose(rng, _CHANNELS))
        name, phone = self._reporter(rng, channel)
        base = {
            "source": INTAKE_SOURCE, "area_code": area, "report_id": rid, "channel": channel,
            "category": cat.code, "description": "",
            "address": f"{rng.choice(_PLACES)}, {self.areas[area].name_vi}",
            "lat": None, "lon": None, "assigned_agency": "", "due_at": None, "rating": None,
            "reporter_pseudonym": "",
        }
        # Personal data goes through the privacy step before anything else sees it.
        first = protect_report(dict(base, description=self._description(rng, cat.code, phone),
                                    reporter_name=name, reporter_phone=phone), self.key)
        base["reporter_pseudonym"] = first["reporter_pseudonym"]
        steps: list[tuple[datetime, dict[str, Any]]] = [(submitted, dict(first,
                                                                           status="submitted"))]
        agency = cat.agency
        if due is not None:
            assigned = submitted + 2 * _H
            work = dict(base, source=agency, assigned_agency=agency, due_at=due)
            steps.append((assigned, dict(work, source=INTAKE_SOURCE, status="assigned")))
            steps.append((assigned + 3 * _H, dict(work, status="in_progress")))
            if resolved is not None:
                steps.append((resolved, dict(work, status="resolved", rating=3)))
        else:
            steps.extend(self._drawn_lifecycle(rng, submitted, base, agency, cat.due_days))
        events = []
        for k, (at, value) in enumerate(steps):
            value = dict(value, event_id=f"{rid}-{k}-{value['status']}", occurred_at=_ms(at),
                         due_at=_ms(value["due_at"]) if value["due_at"] is not None else None)
            events.append(SimEvent(REPORT_TOPIC, rid, _ordered(value)))
        return events

    def _drawn_lifecycle(self, rng: random.Random, submitted: datetime, base: dict[str, Any],
                         agency: str, due_days: int) -> list[tuple[datetime, dict[str, Any]]]:
        delay = timedelta(minutes=min(480.0, max(10.0, rng.lognormvariate(math.log(90), 0.6))))
        assigned = _daytime(rng, submitted + delay)
        if rng.random() < 0.03:
            return [(assigned, dict(base, status="rejected"))]
        allowed = due_days * _D
        due = assigned + allowed
        work = dict(base, source=agency, assigned_agency=agency, due_at=due)
        steps = [(assigned, dict(work, source=INTAKE_SOURCE, status="assigned"))]
        roll = rng.random()
        share = (rng.uniform(0.15, 0.95) if roll < 0.88 else rng.uniform(1.02, 1.5)
                 if roll < 0.96 else rng.uniform(0.2, 0.8))
        end = _daytime(rng, assigned + share * allowed)
        if roll < 0.88 and end > due:
            end = due - timedelta(minutes=rng.randrange(5, 120))  # work done before the evening
        started = _daytime(rng, assigned + timedelta(
            minutes=min(1440.0, rng.lognormvariate(math.log(240), 0.7))))
        if started < end:
            steps.append((started, dict(work, status="in_progress")))
        if roll >= 0.96:
            steps.append((end, dict(work, status="rejected")))
            return steps
        rating = None
        if rng.random() < 0.6:
            rating = int(_choose(rng, _RATINGS_ON_TIME if end <= due else _RATINGS_LATE))
        steps.append((end, dict(work, status="resolved", rating=rating)))
        return steps

    def _hour_reports(self, hour: int) -> list[SimEvent]:
        """Every step of the reports submitted in UTC hour ``hour``."""
        assert self.world_start is not None
        rng = random.Random(f"{self.seed}|feedback|{hour}")
        start = from_epoch_ms(hour * _HOUR_MS)
        local = _local(start)
        lam = (self.rate / 24 * _PROFILE[local.hour] / _PROFILE_MEAN
               * _WEEKDAY[local.weekday()])
        out: list[SimEvent] = []
        for n in range(_poisson(rng, lam)):
            at = start + timedelta(milliseconds=rng.randrange(_HOUR_MS))
            area = str(_choose(rng, self._area_weights))
            category = self._category(rng, at)
            if at < self.world_start:
                continue
            rid = f"PA{self.seed}-{local:%y%m%d-%H}{n:02d}"
            out.extend(self._report(rid, at, area, category))
        return out

    def _anchor(self, ms: int) -> None:
        if self.anchor is not None:
            return
        anchor = self.anchor = from_epoch_ms(ms)
        self.world_start = anchor - self.backfill
        self._generated_to = to_epoch_ms(self.world_start) // _HOUR_MS - 1
        if not self.episodes:
            return
        rng = random.Random(f"{self.seed}|feedback|episodes|{ms}")
        areas = list(self.areas)
        self.surge_area = rng.choice(areas)
        tag = f"{_local(anchor):%y%m%d-%H}"
        for k, minute in enumerate(SURGE_MINUTES):
            at = anchor + minute * _M + timedelta(seconds=rng.randrange(60))
            self._index(self._report(f"PA{self.seed}-{tag}L{k}", at, self.surge_area,
                                     "flooding", due=at + 3 * _D, channel="hotline"))
        for k, script in enumerate(BACKFILL_OVERDUE):
            due = anchor + script.due
            cat = self.categories.get(script.category)
            days = cat.due_days if cat is not None else 5
            submitted = max(self.world_start + _H, due - days * _D - 2 * _H)
            rid = f"PA{self.seed}-{tag}Q{k}"
            self.scripted.append(rid)
            resolved = anchor + script.resolved if script.resolved is not None else None
            self._index(self._report(rid, submitted, rng.choice(areas), script.category,
                                     due=due, resolved=resolved, channel="app"))

    def _index(self, events: list[SimEvent]) -> None:
        for ev in events:
            hour = to_epoch_ms(ev.occurred_at) // _HOUR_MS
            if hour > self._served_to:
                self._by_hour.setdefault(hour, []).append(ev)

    def _generate_to(self, hour: int) -> None:
        while self._generated_to < hour:
            self._generated_to += 1
            self._index(self._hour_reports(self._generated_to))

    def events_at(self, now: datetime, interval_s: float = 60.0) -> list[SimEvent]:
        """Events with ``now − interval_s < occurred_at <= now`` — on the first call every
        event of the world up to ``now`` (the backfill included)."""
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        end = to_epoch_ms(now)
        start = end - round(interval_s * 1000)
        first = self.anchor is None
        self._anchor(start)
        assert self.world_start is not None
        if first:
            start = to_epoch_ms(self.world_start) - 1
        self._generate_to(end // _HOUR_MS)
        out: list[SimEvent] = []
        for hour in range(start // _HOUR_MS, end // _HOUR_MS + 1):
            out.extend(e for e in self._by_hour.get(hour, ())
                       if start < to_epoch_ms(e.occurred_at) <= end)
        # Hours wholly before this interval are done: forget them.
        done = start // _HOUR_MS - 1
        for hour in [h for h in self._by_hour if h <= done]:
            del self._by_hour[hour]
        self._served_to = max(self._served_to, done)
        return sorted(out, key=lambda e: (e.occurred_at, e.value["event_id"]))


_FIELDS = ("event_id", "occurred_at", "source", "area_code", "report_id", "status", "channel",
           "category", "description", "address", "lat", "lon", "assigned_agency", "due_at",
           "rating", "reporter_pseudonym")


def _ordered(value: Mapping[str, Any]) -> dict[str, Any]:
    """The event in schema field order (and nothing else)."""
    return {f: value[f] for f in _FIELDS}


__all__ = ["BACKFILL_OVERDUE", "SURGE_MINUTES", "FeedbackSimulator", "ScriptedReport"]
