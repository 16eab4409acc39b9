import pytest
from helpers import find_free_port_pair

from ioc.connectors.clickhouse import ClickHouseUnavailable, connect


def test_unknown_scheme_is_refused_with_the_choices() -> None:
    with pytest.raises(ClickHouseUnavailable, match="chdb://, http:// or https://"):
        connect("mysql://localhost/ioc")


def test_unreachable_server_is_reported_without_its_password() -> None:
    port = find_free_port_pair()  # nothing listens there
    with pytest.raises(ClickHouseUnavailable) as info:
        connect(f"http://analyst:s3cret-pw@127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
