"""The health and education data contract: JSON with calendar dates, the wire, semantic checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from ioc.schemas.catalogue import Catalogue
from ioc.schemas.jsonconv import ConversionError, json_to_record, record_to_json
from ioc.schemas.serde import Serde
from ioc.schemas.validation import semantic_errors

CAT = Catalogue()
STATUS = "ioc.health.facility_status.v1"
CASE = "ioc.health.disease_case.v1"
ATTENDANCE = "ioc.edu.attendance.v1"


def attendance_json(**changes: Any) -> dict[str, Any]:
    obj = {"event_id": "a-1", "occurred_at": "2026-11-02T07:30:00+07:00",
           "source": "SGDDT-QNA", "area_code": "510", "school_id": "510-th-01",
           "level": "primary", "school_day": "2026-11-02", "enrolled": 400, "present": 380}
    obj.update(changes)
    return obj


def case_json(**changes: Any) -> dict[str, Any]:
    obj = {"event_id": "c-1", "occurred_at": "2026-11-02T09:00:00+07:00", "source": "CDC-QNA",
           "area_code": "503", "case_id": "503-1", "disease": "dengue"}
    obj.update(changes)
    return obj


def test_dates_are_iso_calendar_days_and_survive_the_wire() -> None:
    record = json_to_record(CAT.get(ATTENDANCE), attendance_json())
    assert record["school_day"] == date(2026, 11, 2)
    assert record["occurred_at"] == datetime(2026, 11, 2, 0, 30, tzinfo=UTC)
    serde = Serde()
    assert serde.decode(ATTENDANCE, serde.encode(ATTENDANCE, record)) == record
    as_json = record_to_json(record)
    assert as_json["school_day"] == "2026-11-02"
    assert json_to_record(CAT.get(ATTENDANCE), as_json) == record


def test_case_defaults_fill_the_optional_fields() -> None:
    record = json_to_record(CAT.get(CASE), case_json())
    assert (record["classification"], record["onset_date"], record["age_group"],
            record["hospitalized"], record["facility_id"]) == (
        "suspected", None, "unknown", False, "")
    assert json_to_record(CAT.get(CASE), case_json(onset_date="2026-10-30"))[
        "onset_date"] == date(2026, 10, 30)
    assert semantic_errors(CASE, record) == []


@pytest.mark.parametrize("value", ["2026-13-01", "02/11/2026", 20261102,
                                   "2026-11-02T07:30:00+07:00", None])
def test_a_bad_date_is_named(value: Any) -> None:
    with pytest.raises(ConversionError) as err:
        json_to_record(CAT.get(ATTENDANCE), attendance_json(school_day=value))
    assert err.value.problems[0].startswith("school_day: ")


def test_status_icu_is_optional_as_a_pair() -> None:
    obj = {"event_id": "s-1", "occurred_at": "2026-11-02T09:00:00+07:00", "source": "SYT-QNA",
           "area_code": "502", "facility_id": "bvdk-qnam", "beds_total": 600,
           "beds_occupied": 640}
    record = json_to_record(CAT.get(STATUS), obj)
    assert (record["emergency_waiting"], record["icu_total"], record["icu_occupied"]) == (
        0, None, None)
    assert semantic_errors(STATUS, record) == []  # overcrowding above 100 % is real
    half = dict(record, icu_total=20)
    assert semantic_errors(STATUS, half) == ["icu_total, icu_occupied: give both or neither"]


def test_semantic_checks_name_the_field() -> None:
    def errors(topic: str, obj: dict[str, Any]) -> list[str]:
        return semantic_errors(topic, json_to_record(CAT.get(topic), obj))

    assert errors(ATTENDANCE, attendance_json(present=401)) == [
        "present: 401 is more than enrolled (400)"]
    assert errors(ATTENDANCE, attendance_json(enrolled=0, present=0)) == [
        "enrolled: must be > 0, got 0"]
    # 23:30 on 1 Nov UTC is 06:30 on 2 Nov in Vietnam: the right day; 16:30 UTC is not
    assert errors(ATTENDANCE, attendance_json(occurred_at="2026-11-01T23:30:00Z")) == []
    assert errors(ATTENDANCE, attendance_json(occurred_at="2026-11-01T16:30:00Z")) == [
        "school_day: 2026-11-02 is not the local (Asia/Ho_Chi_Minh) date of occurred_at "
        "(2026-11-01); stamp the report with the roll-call time"]
    assert errors(ATTENDANCE, attendance_json(school_id=" ", area_code="")) == [
        "school_id: must not be empty (a school id of ref_schools)",
        "area_code: must not be empty (where the school is)"]
    assert errors(CASE, case_json(onset_date="2026-11-03")) == [
        "onset_date: 2026-11-03 is after the diagnosis date 2026-11-02 (local date of "
        "occurred_at)"]
    assert errors(CASE, case_json(case_id="", area_code="")) == [
        "case_id: must not be empty (the surveillance system's case number)",
        "area_code: must not be empty (where the patient lives)"]
    status = {"event_id": "s", "occurred_at": "2026-11-02T09:00:00+07:00", "source": "SYT",
              "area_code": "502", "facility_id": "x", "beds_total": -1, "beds_occupied": 3,
              "emergency_waiting": -2}
    assert errors(STATUS, status) == ["beds_total: must be >= 0, got -1",
                                      "emergency_waiting: must be >= 0, got -2"]


def test_unknown_enum_symbols_are_rejected_listing_the_allowed_ones() -> None:
    with pytest.raises(ConversionError) as err:
        json_to_record(CAT.get(CASE), case_json(disease="zika"))
    assert "'zika' is not one of" in err.value.problems[0] and "dengue" in str(err.value)
