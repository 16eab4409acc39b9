"""A fresh platform (own topic prefix, data dir and embedded ClickHouse) per e2e test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline import Pipeline


@pytest.fixture
def pipeline(kafka_broker: str, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(kafka_broker, tmp_path)
    p.setup()
    yield p
    p.close()
