"""Shared builders for the notifier tests: alert records and a small routing config."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ioc.connectors.notify.config import NotifyConfig, parse_config
from ioc.streams.rules import alert_record

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Quảng Nam

CONFIG = """
version: 1
global:
  title: IOC Quảng Nam
people:
  an:    {name: Nguyễn Văn An, email: an@sogtvt.example}
  binh:  {name: Trần Thị Bình, email: binh@sogtvt.example, telegram: "1002"}
  cuong: {name: Lê Văn Cường, email: cuong@sogtvt.example}
  duc:   {name: Phạm Minh Đức, email: duc@sogtvt.example, phone: "0905000104"}
channels:
  email: {type: email, host: 127.0.0.1, from: "IOC <ioc@example.vn>"}
  telegram: {type: telegram}
receivers:
  ioc:       {members: [an], via: [email]}
  gt:        {members: [binh], via: [email, telegram], fallback: ioc}
  truong-ca: {members: [cuong], via: [email]}
  lanh-dao:  {members: [duc], via: [email]}
route:
  receiver: ioc
  group_by: [domain, area_code]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - name: giao-thong
      match: {domain: traffic}
      receiver: gt
      escalation:
        - {after: 15m, receiver: truong-ca}
        - {after: 45m, receiver: lanh-dao}
inhibit_rules:
  - {source: {severity: critical}, target: {severity: warning}, equal: [entity]}
"""


@pytest.fixture
def config() -> NotifyConfig:
    return parse_config(CONFIG, "test.yaml")


def alert(segment: str, severity: str = "warning", status: str = "firing",
          starts_at: datetime = T0, updated_at: datetime | None = None, area: str = "502",
          rule: str = "traffic.congestion", domain: str = "traffic") -> dict[str, Any]:
    ends = (updated_at or starts_at) if status == "resolved" else None
    return alert_record(
        rule=rule, labels={"segment_id": segment}, severity=severity, status=status,
        domain=domain, area_code=area, entity=segment, value=0.7, threshold=0.6,
        summary=f"Ùn tắc kéo dài trên {segment}: chỉ số ùn tắc 0.70 (ngưỡng 0.6).",
        starts_at=starts_at, ends_at=ends, updated_at=updated_at or starts_at)
