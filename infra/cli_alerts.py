"""``ioc notify`` and ``ioc alerts …``: the notifier and the operators' commands.

    ioc notify [--config F] [--check]         run the notifier alone (or only validate F)
    ioc alerts list [--all] [--domain D]      firing alerts (or every alert), with acks
    ioc alerts show ALERT_ID                  one alert: state, ack, notification history
    ioc alerts ack ALERT_ID --by NAME [--comment TEXT]
    ioc alerts silence add MATCHER… --by NAME (--duration 2h | --until TIME) [--comment TEXT]
    ioc alerts silence list [--all]
    ioc alerts silence expire SILENCE_ID --by NAME

Every ``alerts`` command reads and writes Kafka topics only (``ioc.alert.v1``,
``ioc.alert_ack.v1``, ``ioc.silence.v1``, ``ioc.alert_event.v1``), never the embedded
ClickHouse, so it works while ``ioc run`` is running. ALERT_ID may be a unique prefix (8+
characters are usually enough). Output is Vietnamese; ``--format json`` gives JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.connectors.notify.config import ConfigError
from ioc.infra.settings import Settings

__all__ = ["ConfigError", "register"]

ALERT, ACK, SILENCE, EVENTS = ("ioc.alert.v1", "ioc.alert_ack.v1", "ioc.silence.v1",
                               "ioc.alert_event.v1")


def register(sub: Any) -> None:
    """Add ``notify`` and ``alerts`` to the ``ioc`` command's subparsers."""
    s = sub.add_parser("notify", help="run the alert notifier (routing, escalation, acks)")
    s.add_argument("--config", help="routing config (default: IOC_NOTIFY_CONFIG or "
                                    "$IOC_DATA_DIR/notify/routes.yaml)")
    s.add_argument("--check", action="store_true",
                   help="only validate the config and print the routing tree")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_notify)

    a = sub.add_parser("alerts", help="alerts for operators: list, show, ack, silence")
    alerts = a.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    s = alerts.add_parser("list", help="firing alerts with who acknowledged them")
    s.add_argument("--all", action="store_true", help="also resolved alerts")
    s.add_argument("--domain", help="only this domain (traffic, security, …)")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.set_defaults(func=cmd_list)
    s = alerts.add_parser("show", help="one alert: state, ack and notification history")
    s.add_argument("alert_id")
    s.add_argument("--since", default="7d", help="history to show (default 7d)")
    s.set_defaults(func=cmd_show)
    s = alerts.add_parser("ack", help="acknowledge an alert: you take it on; it stops "
                                      "escalating")
    s.add_argument("alert_id")
    s.add_argument("--by", required=True, help="your name, as colleagues know it")
    s.add_argument("--comment", default="", help="what you are doing about it")
    s.set_defaults(func=cmd_ack)
    s = alerts.add_parser("silence", help="silences: mute notifications for matching alerts")
    silence = s.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    s = silence.add_parser("add", help="create a silence",
                           description='Matchers: name="value", name!="value", name=~"regex", '
                                       'name!~"regex" on domain, area (area_code), severity, '
                                       'rule, entity, alert_id. Times: ISO 8601; without an '
                                       "offset they are Vietnam time.")
    s.add_argument("matchers", nargs="+", metavar="MATCHER")
    s.add_argument("--by", required=True)
    s.add_argument("--comment", default="")
    s.add_argument("--start", help="when it starts (default now)")
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--duration", help="e.g. 2h, 30m, 1d")
    group.add_argument("--until", help="end time")
    s.set_defaults(func=cmd_silence_add)
    s = silence.add_parser("list", help="active and upcoming silences")
    s.add_argument("--all", action="store_true", help="also expired ones")
    s.set_defaults(func=cmd_silence_list)
    s = silence.add_parser("expire", help="end a silence now")
    s.add_argument("silence_id")
    s.add_argument("--by", required=True)
    s.set_defaults(func=cmd_silence_expire)


# -- ioc notify --------------------------------------------------------------------------------

def cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from ioc.connectors.notify.config import ConfigError, load_config
    from ioc.infra.runtime import configure_logging

    path = Path(args.config) if args.config else settings.notify_config_path
    if path is None:
        print("ioc notify: no routing config: set IOC_NOTIFY_CONFIG or create "
              f"{settings.data_dir / 'notify' / 'routes.yaml'} (example: "
              "infra/notify/routes.example.yaml; guide: docs/notifications.md)",
              file=sys.stderr)
        return 2
    try:
        config = load_config(path)
    except ConfigError as exc:
        print("ioc notify: the routing config is invalid:\n" + str(exc), file=sys.stderr)
        return 2
    if args.check:
        print(f"{path}: hợp lệ (valid) — {len(config.people)} cán bộ, "
              f"{len(config.receivers)} tổ trực, {len(config.channels)} kênh, "
              f"{len(config.inhibit_rules)} quy tắc ức chế")
        print("\n".join(config.describe()))
        return 0
    configure_logging(args.verbose)
    from ioc.infra.cli import _kafka_needed

    _kafka_needed(settings)
    from ioc.connectors.notify.service import notify_main

    print(f"ioc notify: {path} on {settings.bootstrap}; ack links at "
          f"{settings.notify_base_url}/ack/…", file=sys.stderr)
    try:
        return notify_main(settings.with_(notify_config=path), str(path))
    except RuntimeError as exc:  # e.g. topics missing: `ioc setup` first
        print(f"ioc notify: {exc}", file=sys.stderr)
        return 1


# -- reading state from Kafka -------------------------------------------------------------------

class State:
    def __init__(self, settings: Settings, with_events: timedelta | None = None) -> None:
        from ioc.connectors.notify.kafka_io import read_topics
        from ioc.infra.cli import _kafka_needed
        from ioc.schemas.serde import Serde

        _kafka_needed(settings)
        topics = [ALERT, ACK, SILENCE] + ([EVENTS] if with_events else [])
        since = {EVENTS: datetime.now(UTC) - with_events} if with_events else None
        try:
            reads = read_topics(settings, Serde(), topics, since)
        except RuntimeError as exc:
            raise SystemExit(f"ioc alerts: {exc}") from None
        self.alerts: dict[str, dict[str, Any]] = {}
        for rec in reads[ALERT].records:
            cur = self.alerts.get(rec["alert_id"])
            if cur is None or (rec["starts_at"], rec["updated_at"]) >= (cur["starts_at"],
                                                                        cur["updated_at"]):
                self.alerts[rec["alert_id"]] = rec
        self.acks: dict[str, dict[str, Any]] = {}
        for ack in reads[ACK].records:
            cur = self.acks.get(ack["alert_id"])
            if cur is None or (ack["starts_at"], ack["acked_at"]) >= (cur["starts_at"],
                                                                      cur["acked_at"]):
                self.acks[ack["alert_id"]] = ack
        self.silences: dict[str, dict[str, Any]] = {}
        for s in reads[SILENCE].records:
            cur = self.silences.get(s["silence_id"])
            if cur is None or s["updated_at"] >= cur["updated_at"]:
                self.silences[s["silence_id"]] = s
        self.events = sorted(reads[EVENTS].records, key=lambda e: e["occurred_at"]) \
            if with_events else []

    def find(self, prefix: str) -> dict[str, Any]:
        hits = [a for aid, a in self.alerts.items() if aid.startswith(prefix)]
        if not hits:
            raise SystemExit(f"ioc alerts: không có cảnh báo nào có mã {prefix!r} "
                             "(no alert with that id; `ioc alerts list --all`)")
        if len(hits) > 1:
            raise SystemExit(f"ioc alerts: mã {prefix!r} khớp {len(hits)} cảnh báo; gõ thêm ký "
                             "tự (the prefix is ambiguous)")
        return hits[0]

    def ack_of(self, alert: Mapping[str, Any]) -> dict[str, Any] | None:
        ack = self.acks.get(alert["alert_id"])
        return ack if ack is not None and ack["starts_at"] == alert["starts_at"] else None


def _areas(settings: Settings) -> dict[str, str]:
    from ioc.infra.reference import load_areas

    return {code: a.name_vi for code, a in load_areas(settings.reference_dir).items()}


def _producer(settings: Settings) -> Any:
    from ioc.connectors.producer import EventProducer, make_producer

    return EventProducer(make_producer(settings.bootstrap, **settings.kafka_security),
                         topic_name=settings.topic)


# -- list / show --------------------------------------------------------------------------------

def _ack_text(ack: Mapping[str, Any] | None) -> str:
    from ioc.connectors.notify.model import local_time

    if ack is None:
        return "Chưa xác nhận"
    comment = f" — «{ack['comment']}»" if ack.get("comment") else ""
    return f"Đã xác nhận: {ack['acked_by']} lúc {local_time(ack['acked_at'])}{comment}"


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.notify.model import (
        SEVERITY_RANK,
        domain_vi,
        duration_vi,
        local_time,
        severity_vi,
    )

    state = State(settings)
    now = datetime.now(UTC)
    alerts = [a for a in state.alerts.values()
              if (args.all or a["status"] == "firing")
              and (not args.domain or a["domain"] == args.domain)]
    alerts.sort(key=lambda a: (a["status"] != "firing", SEVERITY_RANK.get(a["severity"], 9),
                               -a["starts_at"].timestamp()))
    if args.format == "json":
        for a in alerts:
            ack = state.ack_of(a)
            print(json.dumps({**{k: _plain(v) for k, v in a.items()},
                              "acked_by": ack["acked_by"] if ack else "",
                              "acked_at": _plain(ack["acked_at"]) if ack else None,
                              "ack_comment": ack.get("comment", "") if ack else ""},
                             ensure_ascii=False))
        return 0
    areas = _areas(settings)
    firing = [a for a in alerts if a["status"] == "firing"]
    unacked = sum(1 for a in firing if state.ack_of(a) is None)
    critical = sum(1 for a in firing if a["severity"] == "critical")
    print(f"Cảnh báo đang kích hoạt: {len(firing)} ({critical} nghiêm trọng, "
          f"{len(firing) - critical} khác; {unacked} chưa xác nhận)"
          + (f" — và {len(alerts) - len(firing)} đã kết thúc" if args.all else ""))
    for a in alerts:
        mark = "●" if a["status"] == "firing" else "○"
        if a["status"] == "firing":
            when = (f"từ {local_time(a['starts_at'])} "
                    f"({duration_vi(max(now - a['starts_at'], timedelta(0)))})")
        else:
            when = f"{local_time(a['starts_at'])} → {local_time(a.get('ends_at'))}, đã kết thúc"
        area = areas.get(a["area_code"], a["area_code"]) or "toàn tỉnh"
        print(f"\n{mark} [{severity_vi(a['severity'])}] {a['alert_id']}  {when}")
        print(f"  {a['summary']}")
        place = " · ".join(x for x in (domain_vi(a["domain"]), area, a["entity"]) if x)
        ack_text = _ack_text(state.ack_of(a)) if a["status"] == "firing" else ""
        print(f"  {place}" + (f" · {ack_text}" if ack_text else ""))
    return 0


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


EVENT_VI = {"alert_firing": "Kích hoạt", "alert_resolved": "Kết thúc",
            "notification": "Thông báo", "delivery": "Gửi", "suppressed": "Không gửi",
            "acked": "Xác nhận", "silence_created": "Tạo im lặng",
            "silence_expired": "Kết thúc im lặng"}
REASON_VI = {"new": "mới", "changed": "thay đổi", "repeat": "nhắc lại",
             "resolved": "đã kết thúc", "escalation": "leo thang", "fallback": "chuyển tiếp",
             "silenced": "đang im lặng", "inhibited": "bị ức chế bởi cảnh báo khác"}
OUTCOME_VI = {"sent": "✓ đã gửi", "failed": "✗ lỗi, thử lại", "gave_up": "✗ không gửi được",
              "superseded": "– thay bằng thông báo mới hơn"}


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.notify.model import (
        STATUS_VI,
        domain_vi,
        local_time,
        parse_duration,
        severity_vi,
    )

    state = State(settings, with_events=parse_duration(args.since))
    a = state.find(args.alert_id)
    areas = _areas(settings)
    area = areas.get(a["area_code"], a["area_code"]) or "toàn tỉnh"
    print(f"Cảnh báo {a['alert_id']} — {a['rule']}")
    print(f"Trạng thái: {STATUS_VI.get(a['status'], a['status'])} · Mức độ: "
          f"{severity_vi(a['severity'])}")
    print(f"Nội dung: {a['summary']}")
    print(f"Lĩnh vực: {domain_vi(a['domain'])} · Địa bàn: {area}"
          + (f" ({a['area_code']})" if a["area_code"] else "")
          + (f" · Đối tượng: {a['entity']}" if a["entity"] else ""))
    print(f"Bắt đầu: {local_time(a['starts_at'])} · Cập nhật: {local_time(a['updated_at'])}"
          + (f" · Kết thúc: {local_time(a['ends_at'])}" if a.get("ends_at") else ""))
    print(f"Giá trị: {a['value']:g} (ngưỡng {a['threshold']:g})")
    ack = state.ack_of(a)
    print(_ack_text(ack) + (f" (qua {ack['via']})" if ack else ""))
    aid = a["alert_id"]
    mine = [e for e in state.events
            if e["alert_id"] == aid or any(k.startswith(aid + "|") for k in e["alert_keys"])]
    print(f"\nLịch sử ({args.since}): {len(mine)} bản ghi")
    for e in mine:
        when = local_time(e["occurred_at"])
        kind = EVENT_VI.get(e["kind"], e["kind"])
        if e["kind"] == "notification":
            line = (f"{kind} {REASON_VI.get(e['reason'], e['reason'])} → {e['receiver']} "
                    f"(cấp {e['level']}): {e['summary']}")
        elif e["kind"] == "delivery":
            line = (f"  {OUTCOME_VI.get(e['outcome'], e['outcome'])} qua {e['channel']} → "
                    f"{e['recipient']}" + (f" (lần {e['attempt']})" if e["attempt"] > 1 else "")
                    + (f": {e['detail']}" if e["outcome"] != "sent" and e["detail"] else ""))
        elif e["kind"] == "suppressed":
            line = f"{kind} ({REASON_VI.get(e['reason'], e['reason'])}: {e['detail']})"
        elif e["kind"] == "acked":
            line = f"{kind} bởi {e['actor']}" + (f": {e['detail']}" if e["detail"] else "")
        else:
            line = f"{kind} ({severity_vi(e['severity'])})"
        print(f"{when}  {line}")
    return 0


# -- ack ----------------------------------------------------------------------------------------

def cmd_ack(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.notify.history import ack_record
    from ioc.connectors.notify.model import local_time

    by = args.by.strip()
    if not by:
        print("ioc alerts ack: --by needs your name", file=sys.stderr)
        return 2
    state = State(settings)
    a = state.find(args.alert_id)
    rec = ack_record(a["alert_id"], a["starts_at"], by, args.comment.strip(), "cli",
                     datetime.now(UTC), state.acks.get(a["alert_id"]))
    producer = _producer(settings)
    producer.send(ACK, rec)
    producer.flush(30)
    print(f"Đã ghi nhận: {by} nhận xử lý cảnh báo {a['alert_id']} lúc "
          f"{local_time(rec['acked_at'])}.")
    print(f"  {a['summary']}")
    if a["status"] != "firing":
        print("  (Đợt cảnh báo này đã kết thúc; xác nhận chỉ được lưu vào lịch sử.)")
    else:
        print("  Cảnh báo sẽ không được chuyển lên cấp trên nữa.")
    return 0


# -- silences -----------------------------------------------------------------------------------

def _parse_time(text: str) -> datetime:
    from ioc.connectors.notify.model import LOCAL_TZ

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"ioc alerts silence: not a time: {text!r} (ISO 8601, e.g. "
                         "2026-11-02T17:30 or 2026-11-02T17:30+07:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(UTC)


def cmd_silence_add(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.notify.engine import parse_silence
    from ioc.connectors.notify.model import (
        Matcher,
        duration_vi,
        labels_of,
        local_time,
        parse_duration,
    )

    try:
        matchers = [Matcher.parse(m) for m in args.matchers]
    except ValueError as exc:
        print(f"ioc alerts silence add: {exc}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    start = _parse_time(args.start) if args.start else now
    try:
        end = _parse_time(args.until) if args.until else start + parse_duration(args.duration)
    except ValueError as exc:
        print(f"ioc alerts silence add: {exc}", file=sys.stderr)
        return 2
    if end <= start or end <= now:
        print("ioc alerts silence add: the silence must end after it starts and in the future",
              file=sys.stderr)
        return 2
    record = {"silence_id": uuid.uuid4().hex[:12], "matchers": [str(m) for m in matchers],
              "starts_at": start, "ends_at": end, "created_by": args.by.strip(),
              "comment": args.comment.strip(), "created_at": now, "updated_at": now,
              "expired_by": ""}
    state = State(settings)
    producer = _producer(settings)
    producer.send(SILENCE, record)
    producer.flush(30)
    s = parse_silence(record)
    hits = [a for a in state.alerts.values()
            if a["status"] == "firing" and s.matches(labels_of(a))]
    print(f"Đã tạo im lặng {record['silence_id']}: {', '.join(record['matchers'])}")
    print(f"  {local_time(start)} → {local_time(end)} ({duration_vi(end - start)}), "
          f"người tạo: {record['created_by']}"
          + (f" — {record['comment']}" if record["comment"] else ""))
    print(f"  Khớp {len(hits)} cảnh báo đang kích hoạt" + (":" if hits else "."))
    for a in hits[:20]:
        print(f"    {a['alert_id']}  {a['summary']}")
    return 0


def cmd_silence_list(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.notify.engine import parse_silence
    from ioc.connectors.notify.model import duration_vi, labels_of, local_time

    state = State(settings)
    now = datetime.now(UTC)
    rows = sorted(state.silences.values(), key=lambda s: s["starts_at"])
    shown = [s for s in rows if args.all or s["ends_at"] > now]
    active = sum(1 for s in rows if s["starts_at"] <= now < s["ends_at"])
    print(f"Im lặng: {active} đang hiệu lực, "
          f"{sum(1 for s in rows if s['starts_at'] > now)} sắp tới"
          + (f", {sum(1 for s in rows if s['ends_at'] <= now)} đã hết" if args.all else ""))
    for s in shown:
        if s["ends_at"] <= now:
            status = "đã hết" + (f" (kết thúc sớm bởi {s['expired_by']})"
                                 if s.get("expired_by") else "")
        elif s["starts_at"] > now:
            status = f"bắt đầu sau {duration_vi(s['starts_at'] - now)}"
        else:
            status = f"còn {duration_vi(s['ends_at'] - now)}"
        hits = sum(1 for a in state.alerts.values() if a["status"] == "firing"
                   and parse_silence(s).matches(labels_of(a)))
        print(f"\n{s['silence_id']}  {', '.join(s['matchers'])}")
        print(f"  {local_time(s['starts_at'])} → {local_time(s['ends_at'])} ({status}) · "
              f"{s['created_by']}" + (f": {s['comment']}" if s.get("comment") else ""))
        if s["starts_at"] <= now < s["ends_at"]:
            print(f"  Đang chặn thông báo của {hits} cảnh báo đang kích hoạt.")
    return 0


def cmd_silence_expire(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.notify.model import local_time

    state = State(settings)
    hits = [s for sid, s in state.silences.items() if sid.startswith(args.silence_id)]
    if len(hits) != 1:
        print(f"ioc alerts silence expire: {'no' if not hits else 'more than one'} silence "
              f"with id {args.silence_id!r} (`ioc alerts silence list --all`)", file=sys.stderr)
        return 1
    s = hits[0]
    now = datetime.now(UTC)
    if s["ends_at"] <= now:
        print(f"Im lặng {s['silence_id']} đã hết lúc {local_time(s['ends_at'])}; không cần "
              "làm gì.")
        return 0
    record = dict(s, ends_at=max(now, s["starts_at"]), updated_at=now,
                  expired_by=args.by.strip())
    producer = _producer(settings)
    producer.send(SILENCE, record)
    producer.flush(30)
    print(f"Đã kết thúc im lặng {s['silence_id']} lúc {local_time(now)} "
          f"({', '.join(s['matchers'])}).")
    return 0
