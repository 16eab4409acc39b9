"""Native rewritten for a client's protocol revision (block info, custom-serialization flag)."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.ctypes import RespBuffCls
from clickhouse_connect.driver.query import QueryContext
from clickhouse_connect.driver.transform import NativeTransform

from ioc.connectors.native_format import (
    BLOCK_INFO,
    UnsupportedNative,
    native_for_revision,
    split_type,
)

MANY_TYPES = """
SELECT number AS n, toString(number) AS s, toLowCardinality(toString(number % 2)) AS lc,
       toLowCardinality(if(number % 3 = 0, NULL, toString(number))) AS lcn, [number, 1] AS arr,
       map('a', number) AS m, (number, 'x') AS t,
       CAST((1, 'y') AS Tuple(a UInt8, `b c` String)) AS nt,
       toDecimal64(number, 3) AS d, toDateTime64(number, 3, 'UTC') AS dt,
       if(number % 2 = 0, NULL, number) AS nul, [toLowCardinality('q')] AS alc,
       toFixedString('ab', 2) AS fs, [[1, 2], [3]] AS aa, NULL AS nothing,
       CAST('a', 'Enum8(\\'a\\' = 1, \\'b, c\\' = 2)') AS e, toIPv4('1.2.3.4') AS ip
FROM numbers(7)
SETTINGS max_block_size = 3
"""


class _Source:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.last_message = None
        self.exception_tag = None

    @property
    def gen(self) -> Any:
        yield self.data

    def close(self) -> None:
        pass


def parse(data: bytes, block_info: bool) -> list[tuple[Any, ...]]:
    """clickhouse-connect's own Native reader, as its HTTP client uses it."""
    ctx = QueryContext()
    ctx.block_info = block_info
    return list(NativeTransform().parse_response(RespBuffCls(_Source(data)), ctx).result_rows)


def test_the_example_block_gets_block_info_and_the_custom_serialization_flag(
        chdb_client: Any) -> None:
    raw = chdb_client.raw_query("SELECT 1 AS a, 'x' AS b", fmt="Native")
    assert raw == b"\x02\x01\x01a\x05UInt8\x01\x01b\x06String\x01x"
    assert native_for_revision(raw, 54460) == (
        BLOCK_INFO + b"\x02\x01" + b"\x01a\x05UInt8" + b"\x00" + b"\x01"
        + b"\x01b\x06String" + b"\x00" + b"\x01x")
    assert native_for_revision(raw, 54405) == BLOCK_INFO + raw
    assert native_for_revision(raw, 0) == raw


def test_every_block_of_a_rich_result_is_rewritten_and_reads_back_the_same(
        chdb_client: Any) -> None:
    raw = chdb_client.raw_query(MANY_TYPES, fmt="Native")
    converted = native_for_revision(raw, 54405)
    assert converted.count(BLOCK_INFO) == 3  # 7 rows in blocks of 3
    assert parse(converted, block_info=True) == parse(raw, block_info=False)
    assert len(parse(raw, block_info=False)) == 7
    # one flag per column and block on top for revisions with custom serialization
    assert len(native_for_revision(raw, 54460)) == len(converted) + 3 * 17


def test_types_it_cannot_size_and_old_revisions_are_refused(chdb_client: Any) -> None:
    raw = chdb_client.raw_query("SELECT sumState(number) AS s FROM numbers(3)", fmt="Native")
    with pytest.raises(UnsupportedNative, match="AggregateFunction"):
        native_for_revision(raw, 54460)
    with pytest.raises(UnsupportedNative, match="older"):
        native_for_revision(b"", 54000)


def test_type_names_split_at_top_level_commas_only() -> None:
    assert split_type("Map(String, Array(Tuple(a UInt8, b String)))") == (
        "Map", ["String", "Array(Tuple(a UInt8, b String))"])
    assert split_type("Enum8('a, b' = 1, 'c' = 2)") == ("Enum8", ["'a, b' = 1", "'c' = 2"])
    assert split_type("DateTime64(3, 'UTC')") == ("DateTime64", ["3", "'UTC'"])
    assert split_type("String") == ("String", [])
