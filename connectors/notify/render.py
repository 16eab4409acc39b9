"""Messages in Vietnamese: email subject, plain text and HTML, Telegram HTML, a short SMS text,
and the Alertmanager-compatible webhook payload (version 4).

Every firing, unacknowledged alert in a message carries its own ack link (signed for this
recipient and this episode); acknowledged ones say who took them on. Times are Vietnam time.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.connectors.notify.engine import Notification
from ioc.connectors.notify.model import (
    SEVERITY_RANK,
    domain_vi,
    duration_vi,
    labels_of,
    local_time,
    severity_vi,
)

TAG = {"critical": "NGHIÊM TRỌNG", "warning": "CẢNH BÁO", "info": "THÔNG TIN"}
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end" for firing alerts
TELEGRAM_LIMIT = 4096


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    telegram: str
    short: str


@dataclass(frozen=True)
class Context:
    """What rendering needs besides the notification."""

    title: str
    recipient_name: str
    receiver_description: str
    ack_url: Callable[[Mapping[str, Any]], str | None]  # None: no link (resolved, acked, off)
    ack_of: Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
    area_name: Callable[[str], str]


def _worst(n: Notification) -> str:
    alerts = n.firing or n.alerts
    return min((a["severity"] for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 9),
               default="warning")


def _place(n: Notification, ctx: Context) -> str:
    """What the group is about: domain and area when the alerts share them."""
    parts = []
    domains = {a["domain"] for a in n.alerts}
    areas = {a["area_code"] for a in n.alerts}
    if len(domains) == 1:
        parts.append(domain_vi(domains.pop()))
    if len(areas) == 1:
        code = areas.pop()
        if code:
            parts.append(ctx.area_name(code))
    return " — ".join(parts)


def subject(n: Notification, ctx: Context) -> str:
    tag = TAG.get(_worst(n), _worst(n).upper())
    if n.status == "resolved":
        tag = "ĐÃ KẾT THÚC"
    if n.reason == "repeat":
        tag = f"NHẮC LẠI – {tag}"
    elif n.reason == "escalation":
        tag = f"LEO THANG CẤP {n.level} – {tag}"
    elif n.reason == "fallback":
        tag = f"CHUYỂN TIẾP – {tag}"
    shown = n.firing or n.alerts
    if len(n.alerts) == 1:
        what = _clip(shown[0]["summary"], 140)
    else:
        count = (f"{len(n.firing)} cảnh báo đang kích hoạt" if n.firing
                 else f"{len(n.alerts)} cảnh báo đã kết thúc")
        if n.firing and n.resolved:
            count += f", {len(n.resolved)} đã kết thúc"
        place = _place(n, ctx)
        what = f"{count}{' — ' + place if place else ''}"
    return f"[{ctx.title}] {tag}: {what}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _intro(n: Notification, ctx: Context) -> str:
    firing, resolved = len(n.firing), len(n.resolved)
    if n.reason == "escalation":
        after = duration_vi(n.escalation_after) if n.escalation_after else "thời hạn"
        return (f"LEO THANG CẤP {n.level}: {firing} cảnh báo chưa được ai xác nhận xử lý sau "
                f"{after} kể từ khi thông báo cho tổ trực. Đề nghị đồng chí chỉ đạo xử lý.")
    if n.reason == "fallback":
        failed = "; ".join(n.failures) or "các kênh liên lạc"
        return (f"CHUYỂN TIẾP: không gửi được thông báo tới tổ trực «{n.fallback_from}» "
                f"({failed}). "
                "Đề nghị đồng chí liên hệ tổ trực hoặc xử lý thay.")
    if n.reason == "repeat":
        return f"Nhắc lại: {firing} cảnh báo vẫn đang kích hoạt và chưa được xác nhận hết."
    parts = []
    if firing:
        parts.append(f"{firing} cảnh báo đang kích hoạt")
    if resolved:
        parts.append(f"{resolved} cảnh báo đã kết thúc")
    lead = "Nhóm cảnh báo có thay đổi" if n.reason == "changed" else "Hệ thống thông báo"
    return f"{lead}: " + ", ".join(parts) + "."


def _facts(a: Mapping[str, Any], ctx: Context) -> list[str]:
    area = ctx.area_name(a["area_code"]) if a["area_code"] else "toàn tỉnh"
    lines = [f"Địa bàn: {area} · Lĩnh vực: {domain_vi(a['domain'])}"
             + (f" · Đối tượng: {a['entity']}" if a["entity"] else ""),
             f"Bắt đầu: {local_time(a['starts_at'])} · Mã cảnh báo: {a['alert_id']}"]
    if a["status"] != "firing":
        ended = a.get("ends_at") or a["updated_at"]
        lines.append(f"Kết thúc: {local_time(ended)} (kéo dài "
                     f"{duration_vi(ended - a['starts_at'])})")
    return lines


def _ack_line(a: Mapping[str, Any], ctx: Context) -> tuple[str, str | None]:
    """(text, url) about acknowledgement of one alert."""
    ack = ctx.ack_of(a)
    if ack is not None:
        comment = f" — «{ack['comment']}»" if ack.get("comment") else ""
        return (f"Đã xác nhận: {ack['acked_by']} lúc {local_time(ack['acked_at'])}{comment}",
                None)
    if a["status"] != "firing":
        return "", None
    url = ctx.ack_url(a)
    return (f"Xác nhận xử lý: {url}", url) if url else ("", None)


def render(n: Notification, ctx: Context) -> Message:
    subj = subject(n, ctx)
    lines = [f"Kính gửi đồng chí {ctx.recipient_name},", "", _intro(n, ctx), ""]
    html_items = []
    for title, alerts in (("ĐANG KÍCH HOẠT", n.firing), ("ĐÃ KẾT THÚC", n.resolved)):
        if not alerts:
            continue
        lines.append(f"{title} ({len(alerts)}):")
        rows = []
        for i, a in enumerate(alerts, start=1):
            lines.append(f"{i}. [{severity_vi(a['severity'])}] {a['summary']}")
            lines.extend(f"   {f}" for f in _facts(a, ctx))
            ack_text, url = _ack_line(a, ctx)
            if ack_text:
                lines.append(f"   {ack_text}")
            rows.append(_html_alert(a, ctx, ack_text, url))
        lines.append("")
        html_items.append(f"<h3 style=\"margin:16px 0 8px\">{html.escape(title)} "
                          f"({len(alerts)})</h3>" + "".join(rows))
    lines += [
        "Xác nhận bằng dòng lệnh: ioc alerts ack <mã cảnh báo> --by \"Họ và tên\" "
        "--comment \"Nội dung xử lý\"",
        f"Tổ trực: {ctx.receiver_description or n.receiver} · Nhóm: {n.group_key}",
        f"Thư tự động từ hệ thống {ctx.title}; vui lòng không trả lời thư này.",
    ]
    text = "\n".join(lines) + "\n"
    body_html = (
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(subj)}</title></head>"
        "<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222\">"
        f"<p>Kính gửi đồng chí <b>{html.escape(ctx.recipient_name)}</b>,</p>"
        f"<p>{html.escape(_intro(n, ctx))}</p>" + "".join(html_items)
        + "<p style=\"color:#666;font-size:12px;margin-top:24px\">Xác nhận bằng dòng lệnh: "
        "<code>ioc alerts ack &lt;mã cảnh báo&gt; --by \"Họ và tên\" --comment \"…\"</code><br>"
        f"Tổ trực: {html.escape(ctx.receiver_description or n.receiver)} · Nhóm: "
        f"{html.escape(n.group_key)}<br>Thư tự động từ hệ thống {html.escape(ctx.title)}; vui "
        "lòng không trả lời thư này.</p></body></html>")
    return Message(subj, text, body_html, telegram_text(n, ctx, subj), short_text(n, ctx))


_COLOUR = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


def _html_alert(a: Mapping[str, Any], ctx: Context, ack_text: str, url: str | None) -> str:
    colour = _COLOUR.get(a["severity"], "#555") if a["status"] == "firing" else "#2e7d32"
    facts = "<br>".join(html.escape(f) for f in _facts(a, ctx))
    if url:
        ack = (f"<a href=\"{html.escape(url, quote=True)}\" style=\"display:inline-block;"
               "margin-top:6px;padding:6px 14px;background:#1565c0;color:#fff;"
               "text-decoration:none;border-radius:4px\">Tôi nhận xử lý</a>")
    else:
        ack = f"<span style=\"color:#2e7d32\">{html.escape(ack_text)}</span>" if ack_text else ""
    return (f"<div style=\"border-left:4px solid {colour};padding:6px 12px;margin:8px 0\">"
            f"<b style=\"color:{colour}\">[{html.escape(severity_vi(a['severity']))}]</b> "
            f"{html.escape(a['summary'])}<br><span style=\"color:#555\">{facts}</span>"
            f"{'<br>' + ack if ack else ''}</div>")


def telegram_text(n: Notification, ctx: Context, subj: str | None = None) -> str:
    """Telegram ``parse_mode=HTML`` text (only <b>, <i>, <a>), within the 4096-char limit."""
    out = [f"<b>{html.escape(subj or subject(n, ctx))}</b>", html.escape(_intro(n, ctx))]
    for a in n.alerts:
        mark = "✅" if a["status"] != "firing" else ("🔴" if a["severity"] == "critical"
                                                      else "🟠")
        out.append(f"\n{mark} <b>[{html.escape(severity_vi(a['severity']))}]</b> "
                   f"{html.escape(a['summary'])}")
        out.append(html.escape(_facts(a, ctx)[0]))
        ack_text, url = _ack_line(a, ctx)
        if url:
            out.append(f"<a href=\"{html.escape(url, quote=True)}\">Tôi nhận xử lý</a>")
        elif ack_text:
            out.append(f"<i>{html.escape(ack_text)}</i>")
    text = "\n".join(out)
    if len(text) > TELEGRAM_LIMIT:
        text = "\n".join(out[:2]) + "\n(… nội dung dài, xem email hoặc bảng cảnh báo)"
    return text


def short_text(n: Notification, ctx: Context) -> str:
    """One line for SMS gateways: what, how many, and the first ack link."""
    shown = n.firing or n.alerts
    first = shown[0] if shown else None
    tag = "ĐÃ KẾT THÚC" if n.status == "resolved" else TAG.get(_worst(n), "")
    if n.reason == "escalation":
        tag = f"LEO THANG CẤP {n.level} {tag}"
    text = f"{ctx.title} {tag}: " + (_clip(first["summary"], 160) if first else "")
    if len(shown) > 1:
        text += f" (+{len(shown) - 1} cảnh báo khác)"
    if first is not None:
        _, url = _ack_line(first, ctx)
        if url:
            text += f" Xác nhận: {url}"
    return text


# -- Alertmanager webhook payload --------------------------------------------------------------

def _iso(value: datetime | None) -> str:
    if value is None:
        return ZERO_TIME
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_payload(n: Notification, ctx: Context, external_url: str) -> dict[str, Any]:
    """The JSON Alertmanager's webhook receiver sends (``version: "4"``), so existing
    receivers work; IOC extras are under ``ioc`` and in annotations."""
    alerts = []
    for a in n.alerts:
        labels = {k: v for k, v in labels_of(a).items() if k not in ("status",) and v}
        labels["alertname"] = a["rule"]
        annotations = {"summary": a["summary"], "value": f"{a['value']:g}",
                       "threshold": f"{a['threshold']:g}"}
        if a["area_code"]:
            annotations["area_name"] = ctx.area_name(a["area_code"])
        ack = ctx.ack_of(a)
        if ack is not None:
            annotations["acked_by"] = ack["acked_by"]
            annotations["acked_at"] = _iso(ack["acked_at"])
        else:
            _, url = _ack_line(a, ctx)
            if url:
                annotations["ack_url"] = url
        alerts.append({
            "status": a["status"], "labels": labels, "annotations": annotations,
            "startsAt": _iso(a["starts_at"]),
            "endsAt": _iso(a.get("ends_at")) if a["status"] != "firing" else ZERO_TIME,
            "generatorURL": external_url, "fingerprint": a["alert_id"],
        })
    common_labels = _common([x["labels"] for x in alerts])
    common_annotations = _common([x["annotations"] for x in alerts])
    return {
        "version": "4", "groupKey": n.group_key, "truncatedAlerts": 0, "status": n.status,
        "receiver": n.receiver, "groupLabels": dict(n.group_labels),
        "commonLabels": common_labels, "commonAnnotations": common_annotations,
        "externalURL": external_url, "alerts": alerts,
        "ioc": {"notificationId": n.notification_id, "level": n.level, "reason": n.reason,
                "title": subject(n, ctx)},
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        out = {k: v for k, v in out.items() if m.get(k) == v}
    return out
