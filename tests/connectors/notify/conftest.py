"""The small routing config most notifier tests use."""

from __future__ import annotations

import pytest
from notify_helpers import CONFIG

from ioc.connectors.notify.config import NotifyConfig, parse_config


@pytest.fixture
def config() -> NotifyConfig:
    return parse_config(CONFIG, "test.yaml")
