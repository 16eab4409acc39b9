from pathlib import Path

from ioc.infra.settings import Settings


def test_defaults_use_the_local_broker_and_embedded_clickhouse() -> None:
    s = Settings.from_env({})
    assert s.uses_local_kafka and s.bootstrap == "127.0.0.1:19092"
    assert s.clickhouse == f"chdb://{(Path('var') / 'clickhouse').resolve()}"
    assert s.topic("ioc.kpi.v1") == "ioc.kpi.v1"


def test_environment_overrides_every_setting(tmp_path: Path) -> None:
    s = Settings.from_env({
        "IOC_DATA_DIR": str(tmp_path), "IOC_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "IOC_CLICKHOUSE_URL": "https://ro:pw@ch.example:8443", "IOC_TOPIC_PARTITIONS": "12",
        "IOC_METRICS_PORT": "0", "IOC_ALLOWED_LATENESS_S": "30", "IOC_TOPIC_PREFIX": "staging.",
        "IOC_CLICKHOUSE_DATABASE": "ioc_staging", "IOC_REFERENCE_DIR": str(tmp_path / "ref"),
        "IOC_KAFKA_PORT": "29092"})
    assert not s.uses_local_kafka and s.bootstrap == "k1:9092,k2:9092"
    assert s.clickhouse == "https://ro:pw@ch.example:8443"
    assert (s.topic_partitions, s.metrics_port, s.allowed_lateness_s) == (12, 0, 30.0)
    assert s.topic("ioc.alert.v1") == "staging.ioc.alert.v1"
    assert s.database == "ioc_staging" and s.reference_dir == tmp_path / "ref"
    assert s.kafka_dir == tmp_path / "kafka" and s.kafka_port == 29092


def test_kafka_security_settings_reach_every_client_config(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret-from-file\n")
    s = Settings.from_env({
        "IOC_KAFKA_BOOTSTRAP": "k1:9093,k2:9093", "IOC_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "IOC_KAFKA_USERNAME": "ioc-platform", "IOC_KAFKA_PASSWORD_FILE": str(secret_file),
        "IOC_KAFKA_CA_FILE": str(ca), "IOC_TOPIC_REPLICATION_FACTOR": "3"})
    assert s.kafka_config(**{"group.id": "g"}) == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "ioc-platform",
        "sasl.password": "s3cret-from-file", "ssl.ca.location": str(ca), "group.id": "g"}
    assert s.topic_replication_factor == 3
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.kafka_password)


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    s = Settings.from_env({})
    assert s.kafka_security == {} and s.kafka_ssl_context() is None
    assert s.kafka_config() == {"bootstrap.servers": "127.0.0.1:19092"}


def test_unusable_security_settings_are_refused_with_the_variable_name(tmp_path: Path) -> None:
    import pytest

    from ioc.infra.settings import SettingsError

    cases = [
        ({"IOC_KAFKA_SECURITY_PROTOCOL": "TLS"}, "IOC_KAFKA_SECURITY_PROTOCOL"),
        ({"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "IOC_KAFKA_USERNAME"),
        ({"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "IOC_KAFKA_USERNAME": "u",
          "IOC_KAFKA_PASSWORD": "p", "IOC_KAFKA_SASL_MECHANISM": "PLAIN"},
         "IOC_KAFKA_SASL_MECHANISM"),
        ({"IOC_KAFKA_CA_FILE": str(tmp_path / "missing.pem")}, "IOC_KAFKA_CA_FILE"),
        ({"IOC_KAFKA_PASSWORD_FILE": str(tmp_path / "missing")}, "IOC_KAFKA_PASSWORD_FILE"),
    ]
    for env, name in cases:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env(env)


def test_clickhouse_passwords_never_show(tmp_path: Path) -> None:
    s = Settings.from_env({"IOC_CLICKHOUSE_URL": "https://ioc_writer@ch:8443/",
                           "IOC_CLICKHOUSE_PASSWORD": "p@ss/word"})
    assert s.clickhouse == "https://ioc_writer:p%40ss%2Fword@ch:8443/"
    assert s.clickhouse_display == "https://ioc_writer:***@ch:8443/"
    assert "p@ss" not in repr(s)
    inline = Settings.from_env({"IOC_CLICKHOUSE_URL": "http://ro:pw123@ch:8123"})
    assert inline.clickhouse == "http://ro:pw123@ch:8123"
    assert inline.clickhouse_display == "http://ro:***@ch:8123" and "pw123" not in repr(inline)
    assert Settings.from_env({}).clickhouse_display.startswith("chdb://")
