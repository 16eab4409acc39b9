"""Generated bad input (hypothesis) at every entry point for agencies' data: the gateway over
real HTTP never answers 5xx and accounts for every event; validation, file uploads and the Avro
decoder never raise anything but their own errors, so no worker or gateway crashes on input."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import RunningGateway, call, start_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_files import RecordingProducer

from ioc.connectors.files import upload_file
from ioc.connectors.gateway.ingest import BodyError, parse_events, prepare
from ioc.connectors.gateway.keys import AgencyKey
from ioc.connectors.producer import EventProducer
from ioc.schemas.catalogue import Catalogue
from ioc.schemas.serde import DecodeError, Serde

FLOW = "ioc.traffic.flow.v1"
SERDE = Serde()
KEY = AgencyKey("k", "SGTVT-QNA", ("ioc.*",), "sha256:x")
FIELDS = Catalogue().get(FLOW).field_names

VALID = {"event_id": "fz-0", "occurred_at": "2026-11-30T07:30:00+07:00",
         "source": "SGTVT-QNA", "area_code": "502", "segment_id": "S1",
         "vehicle_count": 4, "avg_speed_kmh": 40.0, "occupancy": 0.2}

json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False) | st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@st.composite
def near_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid flow event with some fields removed, replaced by junk, or added."""
    event = dict(VALID, event_id=f"fz-{draw(st.integers(0, 10**9))}")
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        action = draw(st.sampled_from(["drop", "junk"]))
        if action == "drop":
            event.pop(name, None)
        else:
            event[name] = draw(json_values)
    if draw(st.booleans()):
        event[draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))] = draw(json_values)
    return event


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid_events().map(lambda e: json.dumps(e).encode()),
    st.lists(near_valid_events(), min_size=1, max_size=5).map(lambda b: json.dumps(b).encode()),
)


@given(body=bodies)
@settings(max_examples=300, deadline=None)
def test_prepare_never_raises_and_accounts_for_every_event(body: bytes) -> None:
    try:
        items = parse_events(body)
    except BodyError:
        return
    ok, errors = prepare(SERDE, FLOW, items, KEY)
    bad = {e.index for e in errors}
    # every event is either encoded (once per id) or has at least one named problem
    assert {p.index for p in ok} | bad >= set(range(len(items))) - {
        i for i, it in enumerate(items) if isinstance(it, dict)
        and any(p.event_id == it.get("event_id") for p in ok)}
    for e in errors:
        assert e.error.en and e.error.vi and e.error.code


@pytest.fixture(scope="module")
def gw(kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    g = start_gateway(kafka_broker, tmp_path_factory.mktemp("fuzz"), [FLOW], max_body=4096,
                      max_events=20)
    yield g
    g.stop()


@given(body=bodies)
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_gateway_never_answers_5xx_to_generated_bodies(gw: RunningGateway, body: bytes) -> None:
    if not hasattr(gw, "fuzz_key"):
        gw.fuzz_key, _ = gw.keys.add("SGTVT-QNA", [FLOW], rate_per_s=1e9,  # type: ignore
                                     burst=1000)
    r = call(f"{gw.url}/v1/events/{FLOW}", "POST", raw=body, key=gw.fuzz_key)  # type: ignore
    assert r.status in (200, 400, 413, 422), (r.status, r.body)
    assert isinstance(r.body, dict)
    if r.status == 200:
        assert r.body["accepted"] + r.body["duplicates"] == len(parse_events(body))
    else:
        assert r.body["error"]["en"] and r.body["error"]["vi"]
    if r.status == 422:
        items = parse_events(body)
        assert {e["index"] for e in r.body["errors"]} <= set(range(len(items)))
        assert r.body["errors"]


def test_gateway_is_alive_after_the_fuzzing(gw: RunningGateway) -> None:
    assert call(f"{gw.url}/health").status == 200


def _valid_bytes() -> bytes:
    rec = dict(VALID, occurred_at=datetime(2026, 11, 30, tzinfo=UTC), occupancy=0.5)
    return SERDE.encode(FLOW, rec)


@given(data=st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=60).map(lambda b: b"\xc3\x01" + _valid_bytes()[2:10] + b),
    st.binary(max_size=60).map(lambda b: b"\x00\x00\x00\x00\x01" + b),
    st.tuples(st.integers(0, 60), st.integers(0, 255)).map(
        lambda t: _flip(_valid_bytes(), *t)),
    st.integers(0, 60).map(lambda n: _valid_bytes()[:n])))
@settings(max_examples=250, deadline=None)
def test_decoder_raises_only_decode_errors(data: bytes) -> None:
    serde = Serde(schema_ids={1: SERDE.catalogue.get(FLOW).parsed})
    try:
        record = serde.decode(FLOW, data)
    except DecodeError as exc:
        assert exc.error_type in ("decode", "schema", "validation") and exc.reason
        return
    assert set(record) == set(FIELDS)


def _flip(data: bytes, pos: int, value: int) -> bytes:
    pos = min(pos, len(data) - 1)
    return data[:pos] + bytes([value]) + data[pos + 1:]


@given(lines=st.lists(st.one_of(st.text(max_size=40), near_valid_events().map(json.dumps)),
                      min_size=1, max_size=8))
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_file_upload_accounts_for_every_line(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines)
                    + "\n", encoding="utf-8", errors="surrogatepass")
    fake = RecordingProducer()
    report = upload_file(EventProducer(fake, SERDE), FLOW, path,  # type: ignore[arg-type]
                         progress_out=None)
    # a line is blank when it holds only whitespace (Unicode's too, e.g. U+0085)
    non_blank = [raw for raw in path.read_bytes().split(b"\n")[:-1]
                 if raw.decode("utf-8", "replace").strip()]
    assert report.sent + len(report.rejected_rows) == len(non_blank)
    assert len(fake.sent) == report.sent
