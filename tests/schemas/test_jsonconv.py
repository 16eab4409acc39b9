"""JSON from agencies becomes a contract record or a list of problems naming each field: time
zones are never guessed, typos in field names never drop data, and nothing but
``ConversionError`` comes out however odd the input."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ioc.schemas.catalogue import Catalogue, TopicSchema
from ioc.schemas.jsonconv import (
    ConversionError,
    json_to_record,
    parse_timestamp,
    record_to_json,
)
from ioc.schemas.serde import Serde

FLOW = "ioc.traffic.flow.v1"
INCIDENT = "ioc.traffic.incident.v1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 07:30:00.250 on 29 November 2026 in Vietnam (UTC+7) is 00:30:00.250 UTC.
UTC_INSTANT = datetime(2026, 11, 29, 0, 30, 0, 250000, tzinfo=UTC)
EPOCH_MS = (UTC_INSTANT - EPOCH) // timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture(scope="module")
def flow_schema(catalogue: Catalogue) -> TopicSchema:
    return catalogue.get(FLOW)


@pytest.fixture(scope="module")
def incident_schema(catalogue: Catalogue) -> TopicSchema:
    return catalogue.get(INCIDENT)


def flow_json(**changes: Any) -> dict[str, Any]:
    obj = {
        "event_id": "flow-1", "occurred_at": "2026-11-29T07:30:00.250+07:00",
        "source": "SGTVT-QNA", "area_code": "502", "segment_id": "QL1A-km935",
        "vehicle_count": 12, "avg_speed_kmh": 41.5, "occupancy": 0.3,
    }
    obj.update(changes)
    return obj


def problems(schema: TopicSchema, obj: Any) -> list[str]:
    with pytest.raises(ConversionError) as err:
        json_to_record(schema, obj)
    assert str(err.value) == "; ".join(err.value.problems)
    return err.value.problems


# -- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "2026-11-29T07:30:00.250+07:00",
    "2026-11-29T00:30:00.250Z",
    "2026-11-29T00:30:00.250+00:00",
    "2026-11-28T19:30:00.250-05:00",
    " 2026-11-29T07:30:00.250+07:00 ",
    EPOCH_MS,
    str(EPOCH_MS),
    float(EPOCH_MS),
])
def test_timestamp_forms_all_mean_the_same_utc_instant(value: Any) -> None:
    parsed = parse_timestamp(value)
    assert parsed == UTC_INSTANT
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is UTC


def test_offset_is_converted_to_utc_exactly(flow_schema: TopicSchema) -> None:
    record = json_to_record(flow_schema, flow_json(occurred_at="2026-11-29T07:30:00+07:00"))
    assert record["occurred_at"] == datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    assert record["occurred_at"].tzinfo is UTC
    # Across a date line too: 06:59 in Vietnam is still the previous day in UTC.
    assert parse_timestamp("2026-01-01T06:59:59.999+07:00") == datetime(
        2025, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert parse_timestamp("2026-11-29T07:30:00+07:00") == datetime(
        2026, 11, 29, 7, 30, tzinfo=timezone(timedelta(hours=7)))


def test_epoch_milliseconds_are_exact_through_the_wire(flow_schema: TopicSchema) -> None:
    serde = Serde()
    rng = random.Random(49)
    samples = [0, 1, 999, EPOCH_MS, -1, 253402300799999, -62135596800000]
    samples += [rng.randrange(-62135596800000, 253402300800000) for _ in range(300)]
    for ms in samples:
        for value in (ms, str(ms)) if ms >= 0 else (ms,):
            record = json_to_record(flow_schema, flow_json(occurred_at=value))
            assert record["occurred_at"] == EPOCH + timedelta(milliseconds=ms), value
            decoded = serde.decode(FLOW, serde.encode(FLOW, record))
            assert decoded["occurred_at"] == EPOCH + timedelta(milliseconds=ms), value


@pytest.mark.parametrize("naive", ["2026-11-29T07:30:00", "2026-11-29 07:30:00.250",
                                   "2026-11-29"])
def test_naive_timestamp_is_rejected_asking_for_an_offset(
        flow_schema: TopicSchema, naive: str) -> None:
    (problem,) = problems(flow_schema, flow_json(occurred_at=naive))
    assert problem.startswith("occurred_at:")
    assert "offset" in problem and "+07:00" in problem


@pytest.mark.parametrize("value", [
    "yesterday", "29/11/2026 07:30", "", True, None, [2026, 11, 29], {"ms": 1},
    float("inf"), float("nan"), 10**20, "99999999999999999999", -(10**20),
    "0001-01-01T00:00:00+07:00",
])
def test_unusable_timestamps_are_conversion_errors(flow_schema: TopicSchema, value: Any) -> None:
    (problem,) = problems(flow_schema, flow_json(occurred_at=value))
    assert problem.startswith("occurred_at:")


# -- fields -----------------------------------------------------------------------------------


def test_valid_object_becomes_a_record(flow_schema: TopicSchema) -> None:
    assert json_to_record(flow_schema, flow_json()) == {
        "event_id": "flow-1", "occurred_at": UTC_INSTANT, "source": "SGTVT-QNA",
        "area_code": "502", "segment_id": "QL1A-km935", "vehicle_count": 12,
        "avg_speed_kmh": 41.5, "occupancy": 0.3,
    }


def test_unknown_field_is_rejected_by_name(flow_schema: TopicSchema) -> None:
    (problem,) = problems(flow_schema, flow_json(vehicle_cnt=3))
    assert "vehicle_cnt" in problem and FLOW in problem


def test_typo_reports_both_the_unknown_and_the_missing_field(flow_schema: TopicSchema) -> None:
    obj = flow_json(vehicle_cnt=3)
    del obj["vehicle_count"]
    found = problems(flow_schema, obj)
    assert "vehicle_count: required field is missing" in found
    assert any("vehicle_cnt" in p for p in found)


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "source", "area_code",
                                   "segment_id", "vehicle_count", "avg_speed_kmh"])
def test_missing_required_field_is_named(flow_schema: TopicSchema, field: str) -> None:
    obj = flow_json()
    del obj[field]
    assert problems(flow_schema, obj) == [f"{field}: required field is missing"]


def test_defaults_fill_missing_optional_fields(
        flow_schema: TopicSchema, incident_schema: TopicSchema) -> None:
    obj = flow_json()
    del obj["occupancy"]
    assert json_to_record(flow_schema, obj)["occupancy"] is None
    assert json_to_record(flow_schema, flow_json(occupancy=None))["occupancy"] is None
    incident = json_to_record(incident_schema, {
        "event_id": "inc-1", "occurred_at": "2026-11-29T07:30:00+07:00", "source": "CSGT",
        "area_code": "503", "incident_type": "flooding", "severity": "moderate",
    })
    assert incident["segment_id"] == "" and incident["description"] == ""
    assert incident["lat"] is None and incident["lon"] is None


def test_null_for_a_required_field_is_rejected(flow_schema: TopicSchema) -> None:
    assert problems(flow_schema, flow_json(segment_id=None)) == ["segment_id: must not be null"]


def test_enum_outside_its_symbols_lists_the_allowed_values(
        incident_schema: TopicSchema) -> None:
    obj = {"event_id": "inc-1", "occurred_at": "2026-11-29T07:30:00+07:00", "source": "CSGT",
           "area_code": "503", "incident_type": "crash", "severity": "minor"}
    (problem,) = problems(incident_schema, obj)
    assert problem.startswith("incident_type:") and "'crash'" in problem
    for symbol in ("accident", "breakdown", "flooding", "landslide", "roadwork",
                   "obstruction", "other"):
        assert symbol in problem
    (problem,) = problems(incident_schema, {**obj, "incident_type": "other",
                                            "severity": "Critical"})
    assert problem.startswith("severity:") and "critical" in problem


def test_integers_as_digit_strings_are_accepted(flow_schema: TopicSchema) -> None:
    assert json_to_record(flow_schema, flow_json(vehicle_count="12"))["vehicle_count"] == 12
    assert json_to_record(flow_schema, flow_json(vehicle_count=12.0))["vehicle_count"] == 12
    assert json_to_record(flow_schema, flow_json(avg_speed_kmh="41.5"))["avg_speed_kmh"] == 41.5
    assert json_to_record(flow_schema, flow_json(avg_speed_kmh=41))["avg_speed_kmh"] == 41.0
    assert json_to_record(flow_schema, flow_json(occupancy="0.25"))["occupancy"] == 0.25


@pytest.mark.parametrize(("field", "value"), [
    ("vehicle_count", "abc"), ("vehicle_count", "12.5"), ("vehicle_count", 12.5),
    ("vehicle_count", ""), ("vehicle_count", [12]), ("avg_speed_kmh", "fast"),
    ("avg_speed_kmh", {"v": 1}), ("occupancy", "high"),
    pytest.param("avg_speed_kmh", 10**400, id="avg_speed_kmh-int-beyond-double"),
    ("event_id", 17), ("area_code", 502), ("source", ["SGTVT"]),
])
def test_wrong_types_are_rejected_naming_the_field(
        flow_schema: TopicSchema, field: str, value: Any) -> None:
    (problem,) = problems(flow_schema, flow_json(**{field: value}))
    assert problem.startswith(f"{field}:")


@pytest.mark.parametrize("field", ["vehicle_count", "avg_speed_kmh", "occupancy",
                                   "occurred_at"])
def test_booleans_are_not_numbers(flow_schema: TopicSchema, field: str) -> None:
    for value in (True, False):
        (problem,) = problems(flow_schema, flow_json(**{field: value}))
        assert problem.startswith(f"{field}:")


def test_every_problem_is_reported_at_once(flow_schema: TopicSchema) -> None:
    found = problems(flow_schema, flow_json(occurred_at="2026-11-29T07:30:00",
                                            vehicle_count="many", avg_speed_kmh=True,
                                            colour="red"))
    assert [p.split(":")[0] for p in found[:3]] == ["occurred_at", "vehicle_count",
                                                    "avg_speed_kmh"]
    assert "colour" in found[3]


@pytest.mark.parametrize("obj", [[], "text", 12, None, [{"event_id": "x"}]])
def test_non_objects_are_rejected(flow_schema: TopicSchema, obj: Any) -> None:
    (problem,) = problems(flow_schema, obj)
    assert "expected a JSON object" in problem


def test_odd_json_values_only_ever_give_conversion_errors(
        catalogue: Catalogue) -> None:
    rng = random.Random(5)
    odd: list[Any] = [None, True, False, 0, -1, 2**63, 10**400, 1.5, float("inf"),
                      float("nan"), "", " ", "-", "--5", "²", "١٢", "\ud800", "Z", "+07:00",
                      [], {}, [None], {"a": 1}, "2026-13-45T99:99:99Z", "9" * 30]
    for topic in catalogue.topics:
        schema = catalogue.get(topic)
        names = schema.field_names
        for _ in range(300):
            obj = {n: rng.choice(odd) for n in rng.sample(names, rng.randrange(len(names) + 1))}
            try:
                record = json_to_record(schema, obj)
            except ConversionError as exc:
                assert exc.problems
            else:
                assert set(record) == set(names)


def test_record_to_json_is_the_inverse_for_display(flow_schema: TopicSchema) -> None:
    record = json_to_record(flow_schema, flow_json())
    as_json = record_to_json(record)
    assert as_json["occurred_at"] == "2026-11-29T00:30:00.250000Z"
    assert json.loads(json.dumps(as_json)) == as_json
    assert json_to_record(flow_schema, as_json) == record
    assert record_to_json({"payload": b"\xc3\x01"}) == {"payload": "c301"}
