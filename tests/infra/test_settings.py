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
        "IOC_KAFKA_PORT": "29092", "IOC_PSEUDONYM_KEY": "a-secret-of-20-chars"})
    assert not s.uses_local_kafka and s.bootstrap == "k1:9092,k2:9092"
    assert s.clickhouse == "https://ro:pw@ch.example:8443"
    assert (s.topic_partitions, s.metrics_port, s.allowed_lateness_s) == (12, 0, 30.0)
    assert s.topic("ioc.alert.v1") == "staging.ioc.alert.v1"
    assert s.database == "ioc_staging" and s.reference_dir == tmp_path / "ref"
    assert s.kafka_dir == tmp_path / "kafka" and s.kafka_port == 29092
    assert s.pseudonym_key is not None
    assert s.pseudonym_key.get_secret_value() == "a-secret-of-20-chars"
    assert "a-secret" not in repr(s)  # settings may be logged; the key never is


def test_notifier_settings_and_secrets_never_show(tmp_path: Path) -> None:
    s = Settings.from_env({
        "IOC_DATA_DIR": str(tmp_path), "IOC_NOTIFY_PORT": "0", "IOC_NOTIFY_HOST": "10.1.2.3",
        "IOC_NOTIFY_PUBLIC_URL": "https://ioc.quangnam.example/canh-bao/",
        "IOC_NOTIFY_SECRET": "k1", "IOC_SMTP_PASSWORD": "pw", "IOC_TELEGRAM_BOT_TOKEN": "t",
        "IOC_WEBHOOK_SECRET": "w", "IOC_NOTIFY_TOKEN_ZALO_OA": "z"})
    assert (s.notify_port, s.notify_host) == (0, "10.1.2.3")
    assert s.notify_base_url == "https://ioc.quangnam.example/canh-bao"
    assert s.smtp_password is not None and s.smtp_password.get() == "pw"
    token = s.notify_token("zalo_oa")
    assert token is not None and token.get() == "z"
    text = repr(s) + str(s)
    assert not any(secret in text for secret in ("k1", "'pw'", "'t'", "'w'", "'z'"))
    assert "**********" in text
    # the routing config: explicit, else the data dir's if present, else none (notifier off)
    assert Settings.from_env({"IOC_DATA_DIR": str(tmp_path)}).notify_config_path is None
    (tmp_path / "notify").mkdir()
    (tmp_path / "notify" / "routes.yaml").write_text("version: 1\n", encoding="utf-8")
    assert Settings.from_env({"IOC_DATA_DIR": str(tmp_path)}).notify_config_path == \
        tmp_path / "notify" / "routes.yaml"
    assert Settings.from_env({"IOC_NOTIFY_CONFIG": "/etc/ioc/routes.yaml"}).notify_config_path \
        == Path("/etc/ioc/routes.yaml")
    assert Settings().notify_base_url == "http://127.0.0.1:9480"


def test_query_server_settings_and_the_store_path(tmp_path: Path) -> None:
    s = Settings.from_env({"IOC_DATA_DIR": str(tmp_path), "IOC_QUERY_PORT": "0",
                           "IOC_QUERY_HOST": "10.0.0.5", "IOC_QUERY_USERS": "a:pw-7c1f9e",
                           "IOC_QUERY_MAX_EXECUTION_S": "5", "IOC_QUERY_MAX_RESULT_ROWS": "10",
                           "IOC_QUERY_MAX_RESULT_BYTES": "20", "IOC_QUERY_MAX_MEMORY_BYTES": "30",
                           "IOC_QUERY_MAX_THREADS": "1", "IOC_QUERY_MAX_CONCURRENT": "2"})
    assert (s.query_port, s.query_host, s.query_users) == (0, "10.0.0.5", "a:pw-7c1f9e")
    assert (s.query_max_execution_s, s.query_max_result_rows, s.query_max_result_bytes,
            s.query_max_memory_bytes, s.query_max_threads, s.query_max_concurrent) == (
        5.0, 10, 20, 30, 1, 2)
    assert "pw-7c1f9e" not in repr(s)  # (field names such as notify_secret are fine)
    assert s.chdb_path == str((tmp_path / "clickhouse").resolve())
    assert s.with_(clickhouse_url="http://ch:8123").chdb_path is None
    assert Settings.from_env({}).query_port == 8124


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
