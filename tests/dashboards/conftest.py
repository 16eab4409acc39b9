"""Fixtures for the dashboard tests: one embedded ClickHouse (chDB) per test session.

chDB allows a single engine path per process, so the whole session shares one ``chdb://`` path
(``<pytest basetemp>/chdb``); tests stay apart by each creating its own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import clickhouse_connect
import pytest

from ioc.infra.migrations import migrate
from ioc.infra.reference import load_into_clickhouse


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.getbasetemp() / "chdb"
    path.mkdir(exist_ok=True)
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    yield client
    client.close()


@pytest.fixture
def fresh_db(chdb_client: Any) -> Iterator[str]:
    """A new database with every migration applied and the shipped reference data loaded."""
    db = f"dash_{uuid.uuid4().hex[:12]}"
    migrate(chdb_client, db)
    load_into_clickhouse(chdb_client, db)
    yield db
    chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
