"""Fixtures shared by the whole test suite.

chDB allows a single engine path per process, so the whole session shares one ``chdb://`` path
(``<pytest basetemp>/chdb``); tests stay apart by each creating its own database. Tests that
run the platform's processes give them their own data dirs instead (see tests/e2e).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from helpers import find_free_port_pair, find_free_ports

from ioc.infra.kafka_cluster import LocalKafkaCluster
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
def kafka_jars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's local Kafka clusters share the classpath Maven resolved once."""
    return tmp_path_factory.mktemp("kafka-jars")


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory,
                 kafka_jars: Path) -> Iterator[LocalKafkaCluster]:
    """A real single-node Kafka broker with SASL_SSL (SCRAM-SHA-512), TLS certificates made at
    start, the StandardAuthorizer and no plaintext listener, shared by the session's security
    tests (``-m kafka_secure``). Tests use their own topic prefixes and users."""
    cluster = LocalKafkaCluster(tmp_path_factory.mktemp("kafka-secure"), brokers=1,
                                base_port=find_free_ports(2), secure=True,
                                jars_dir=kafka_jars)
    try:
        cluster.up(timeout=180)
    except KafkaLauncherError as exc:
        cluster.down()
        pytest.fail(f"The secured Kafka broker for the tests did not start.\n{exc}",
                    pytrace=False)
    try:
        yield cluster
    finally:
        cluster.down()


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
