"""Fixtures shared by the whole test suite.

chDB allows a single engine path per process, so the whole session shares one ``chdb://`` path
(``<pytest basetemp>/chdb``); tests stay apart by each creating its own database. Tests that
run the platform's processes give them their own data dirs instead (see tests/e2e).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import clickhouse_connect
import pytest
from helpers import find_free_port_pair

from ioc.infra.local_kafka import KafkaLauncherError, LocalKafka
from ioc.infra.migrations import migrate
from ioc.infra.runtime import load_reference_tables
from ioc.infra.settings import Settings


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of one real local Kafka broker (KRaft) shared by the session.

    Tests create their own uniquely named topics. If the broker cannot start, every test that
    uses it fails with the launcher's message (it is never skipped).
    """
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("kafka-broker"), kafka_port=find_free_port_pair()
    )
    kafka = LocalKafka(settings)
    try:
        kafka.up()
    except KafkaLauncherError as exc:
        pytest.fail(f"The local Kafka broker for the tests did not start.\n{exc}", pytrace=False)
    try:
        yield settings.bootstrap
    finally:
        kafka.down()


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
    load_reference_tables(chdb_client, db)
    yield db
    chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
