"""The data-contract catalogue pages: generated from the schemas (a new topic gets pages by
itself), valid example events, both languages, and a --check that fails when stale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from ioc.infra.cli_schemas import DOCS_DIR, example_events, render_docs, stale_files
from ioc.schemas.catalogue import AVRO_DIR, Catalogue
from ioc.schemas.docs import render_catalogue
from ioc.schemas.serde import Serde

IOC = str(Path(sys.executable).parent / "ioc")


def test_committed_docs_are_up_to_date() -> None:
    assert stale_files(DOCS_DIR, render_docs()) == []


def test_every_topic_has_valid_examples_and_pages_in_both_languages() -> None:
    catalogue = Catalogue()
    examples = example_events(catalogue)
    assert set(examples) == set(catalogue.event_topics)
    for topic, record in examples.items():
        Serde().encode(topic, record)  # raises if the example were invalid
    files = render_docs()
    for topic in catalogue.event_topics:
        vi, en = files[f"vi/{topic}.md"], files[f"en/{topic}.md"]
        for name in catalogue.get(topic).field_names:
            assert f"`{name}`" in vi and f"`{name}`" in en
        assert "## Các trường" in vi and "## Fields" in en
        for route in ("AgencyProducer", "curl", "ioc produce", catalogue.get(topic)
                      .fingerprint.hex()):
            assert route in vi and route in en
        HTMLParser().feed(files[f"vi/{topic}.html"])
    flow = files["vi/ioc.traffic.flow.v1.md"]
    assert "| `avg_speed_kmh` | double | km/h | bắt buộc | ≥ 0 | Tốc độ trung bình" in flow
    assert "| `occupancy` | null \\| double |  | mặc định: null | 0..1; hoặc null |" in flow
    spec = json.loads(files["openapi.json"])
    assert set(spec["paths"]) >= {f"/v1/events/{t}" for t in catalogue.event_topics}


def test_a_new_topic_gets_its_pages_without_code_changes(tmp_path: Path) -> None:
    shutil.copytree(AVRO_DIR, tmp_path / "avro")
    (tmp_path / "avro" / "ioc.edu.attendance.v1.avsc").write_text(json.dumps({
        "type": "record", "name": "Attendance", "namespace": "vn.ioc.edu",
        "doc": "Daily attendance of a school.", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "source", "type": "string"}, {"name": "area_code", "type": "string"},
            {"name": "school_id", "type": "string", "doc": "School id."},
            {"name": "present", "type": "int", "doc": "Pupils present (>= 0)."}]}),
        encoding="utf-8")
    catalogue = Catalogue(tmp_path / "avro")
    files = render_catalogue(catalogue, example_events(catalogue), {}, {})
    page = files["en/ioc.edu.attendance.v1.md"]
    assert "| `present` | int |  | required | ≥ 0 | Pupils present (>= 0). |" in page
    assert "ioc.edu.attendance.v1" in files["README.md"]


def test_check_fails_on_stale_or_extra_files_and_passes_after_regenerating(
        tmp_path: Path) -> None:
    out = tmp_path / "contracts"
    subprocess.run([IOC, "schemas", "docs", "--out", str(out)], check=True,
                   capture_output=True, timeout=120)
    ok = subprocess.run([IOC, "schemas", "docs", "--out", str(out), "--check"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    page = out / "en" / "ioc.traffic.flow.v1.md"
    page.write_text(page.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    (out / "en" / "ioc.old.topic.v1.md").write_text("gone", encoding="utf-8")
    stale = subprocess.run([IOC, "schemas", "docs", "--out", str(out), "--check"],
                           capture_output=True, text=True, timeout=120)
    assert stale.returncode == 1
    assert "en/ioc.old.topic.v1.md" in stale.stderr and "en/ioc.traffic.flow.v1.md" in \
        stale.stderr
    subprocess.run([IOC, "schemas", "docs", "--out", str(out)], check=True,
                   capture_output=True, timeout=120)
    assert not (out / "en" / "ioc.old.topic.v1.md").exists()
    assert subprocess.run([IOC, "schemas", "docs", "--out", str(out), "--check"],
                          capture_output=True, timeout=120).returncode == 0
