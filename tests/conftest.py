"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import find_free_port_pair

from ioc.infra.local_kafka import KafkaLauncherError, LocalKafka
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
