"""The wall profile: the shipped one is valid, every kind of mistake gets a clear message (all
of them at once), kiosk URLs, and the ``ioc wall`` commands as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ioc.infra.wall_profile import (
    DEFAULT_PROFILE,
    DashboardInfo,
    WallProfileError,
    base_url,
    duration_s,
    kiosk_url,
    known_dashboards,
    load_profile,
    parse_profile,
)

IOC = str(Path(sys.executable).parent / "ioc")
KNOWN = known_dashboards()


def ioc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IOC, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "IOC_METRICS_PORT": "0"})


def wall(**overrides: Any) -> dict[str, Any]:
    return {"name": "Tường thử", "columns": 2, "rows": 1, **overrides}


def screen(sid: str, column: int, **fields: Any) -> dict[str, Any]:
    return {"id": sid, "title": f"Màn hình {sid}", "column": column, "row": 0,
            "dashboard": "ioc-overview", **fields}


def problems_of(data: dict[str, Any], known: dict[str, DashboardInfo] | None = None) -> str:
    with pytest.raises(WallProfileError) as err:
        parse_profile(data, KNOWN if known is None else known, "test.toml")
    return str(err.value)


def test_the_shipped_profile_is_a_full_3x2_wall_of_registered_dashboards() -> None:
    profile = load_profile()
    assert profile.source == str(DEFAULT_PROFILE)
    assert (profile.columns, profile.rows, len(profile.screens)) == (3, 2, 6)
    assert all(profile.at(c, r) for c in range(3) for r in range(2))
    assert set(profile.dashboard_uids) <= set(KNOWN)
    assert profile.at(1, 0).dashboards == ("ioc-overview",)  # type: ignore[union-attr]
    rotation = profile.at(1, 1)
    assert rotation is not None and rotation.is_playlist and rotation.interval == "1m"
    assert rotation.playlist_name == "Tường IOC – Các lĩnh vực (luân phiên) [duoi-giua]"
    for s in profile.screens:
        assert (s.width, s.height, s.scale, s.refresh) == (1920, 1080, 1.0, "30s")


def test_a_valid_profile_with_a_playlist_and_per_screen_settings() -> None:
    profile = parse_profile({"wall": wall(refresh="1m"), "screens": [
        screen("a", 0, refresh="15s"),
        {"id": "b", "title": "Luân phiên", "column": 1, "row": 0,
         "playlist": ["ioc-traffic", "ioc-overview", "ioc-traffic"], "interval": "90s",
         "resolution": "3840x2160", "scale": 2},
    ]}, KNOWN)
    a, b = profile.screens
    assert (a.refresh, a.is_playlist, a.dashboards) == ("15s", False, ("ioc-overview",))
    assert b.dashboards == ("ioc-traffic", "ioc-overview", "ioc-traffic")
    assert (b.interval, b.refresh, b.resolution, b.scale) == ("90s", "1m", "3840x2160", 2.0)
    assert profile.dashboard_uids == ["ioc-overview", "ioc-traffic"]


def test_unknown_uid_names_the_registered_ones_and_the_fix() -> None:
    text = problems_of({"wall": wall(), "screens": [
        screen("a", 0, dashboard="ioc-agri"),
        {"id": "b", "title": "B", "column": 1, "row": 0, "playlist": ["ioc-traffic", "ioc-tour"],
         "interval": "1m"}]})
    assert "screen 'a' dashboard: unknown dashboard uid 'ioc-agri'; registered: " in text
    assert "ioc-cyber, ioc-econ, ioc-edu, ioc-egov, ioc-feedback, ioc-health" in text
    assert "register the dashboard in ioc.dashboards.build.DASHBOARDS" in text
    assert "screen 'b' playlist item 2: unknown dashboard uid 'ioc-tour'" in text


def test_a_dashboard_registered_later_is_accepted_once_it_exists() -> None:
    data = {"wall": wall(columns=1), "screens": [screen("a", 0, dashboard="ioc-econ")]}
    future = {**KNOWN, "ioc-econ": DashboardInfo("ioc-econ", "econ", "Kinh tế – xã hội", 27)}
    assert parse_profile(data, future).screens[0].dashboards == ("ioc-econ",)


@pytest.mark.parametrize(("screens", "message"), [
    ([screen("a", 0), screen("a", 1)], "duplicate screen id 'a' (screens 1 and 2)"),
    ([screen("a", 0), screen("b", 0)], "screens 'a' and 'b' are both at column 0, row 0"),
    ([screen("a", 0), {**screen("b", 1), "title": "Màn hình a"}],
     "screens 'a' and 'b' have the same title 'Màn hình a'"),
    ([screen("a", 2)], "screen 'a' column = 2 is outside the wall (0 to 1)"),
    ([screen("a", 0, row=1)], "screen 'a' row = 1 is outside the wall (0 to 0)"),
    ([screen("a", 0, playlist=["ioc-traffic"], interval="1m")],
     "screen 'a': set exactly one of 'dashboard' (one uid) or 'playlist'"),
    ([{k: v for k, v in screen("a", 0).items() if k != "dashboard"}],
     "screen 'a': set exactly one of 'dashboard'"),
    ([screen("a", 0, interval="1m")], "screen 'a': 'interval' only applies to a playlist"),
    ([{**screen("a", 0), "dashboard": None}], None),  # TOML has no null; a bad type instead
    ([{"id": "a", "title": "A", "column": 0, "row": 0, "playlist": ["ioc-traffic"]}],
     "screen 'a': a playlist needs an 'interval'"),
    ([{"id": "a", "title": "A", "column": 0, "row": 0, "playlist": ["ioc-traffic"],
       "interval": "5 min"}],
     "screen 'a' interval: '5 min' is not a duration like 30s, 2m or 1h"),
    ([{"id": "a", "title": "A", "column": 0, "row": 0, "playlist": ["ioc-traffic"],
       "interval": "5s"}], "screen 'a' interval: 5s is shorter than the minimum 10s"),
    ([{"id": "a", "title": "A", "column": 0, "row": 0, "playlist": [], "interval": "1m"}],
     "screen 'a' playlist: a non-empty list of dashboard uids is required"),
    ([screen("a", 0, refresh="1s")], "screen 'a' refresh: 1s is shorter than the minimum 5s"),
    ([screen("Màn A", 0)], "screen 1: id 'Màn A' must be 1–30 lowercase letters"),
    ([screen("a", 0, dashbaord="ioc-overview")], "screen 'a': unknown key 'dashbaord'"),
    ([screen("a", 0, resolution="1080p")],
     "screen 'a' resolution: expected WIDTHxHEIGHT in pixels like \"1920x1080\", got '1080p'"),
    ([screen("a", 0, resolution="1920x900")],
     "screen 'a': dashboard 'ioc-overview' is 27 grid rows tall but a 1920x900 screen at "
     "scale 1 shows 22 in kiosk mode"),
    ([screen("a", 0, scale=1.25)], "shows 21 in kiosk mode"),
    ([], "no [[screens]]: the wall needs at least one screen"),
])
def test_each_mistake_gets_a_clear_message(screens: list[dict[str, Any]],
                                           message: str | None) -> None:
    text = problems_of({"wall": wall(), "screens": screens})
    assert text.startswith("wall profile test.toml:\n  - ")
    if message:
        assert message in text, text


def test_wall_section_mistakes_are_all_reported_at_once() -> None:
    with pytest.raises(WallProfileError) as err:
        parse_profile({"wall": {"name": "", "columns": 0, "rows": "2", "refresh": "soon",
                                "scale": 9, "colour": "red"},
                       "screen": [], "screens": [screen("a", 0, dashboard="ioc-x")]},
                      KNOWN, "w.toml")
    problems = err.value.problems
    for expected in ("unknown top-level key 'screen'", "[wall]: unknown key 'colour'",
                     "[wall] name: a non-empty string is required",
                     "[wall] columns: a whole number from 1 to 12 is required, got 0",
                     "[wall] rows: a whole number from 1 to 12 is required, got '2'",
                     "[wall] refresh: 'soon' is not a duration",
                     "[wall] scale: a number from 0.5 to 4 is required, got 9",
                     "unknown dashboard uid 'ioc-x'"):
        assert any(expected in p for p in problems), (expected, problems)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(WallProfileError, match="file not found"):
        load_profile(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[wall\nname = 1\n", encoding="utf-8")
    with pytest.raises(WallProfileError, match="not valid TOML"):
        load_profile(bad)


def test_durations_and_urls() -> None:
    assert [duration_s(d) for d in ("30s", "2m", "1h")] == [30, 120, 3600]
    for bad in ("0s", "1d", "1.5m", "", "30"):
        with pytest.raises(ValueError):
            duration_s(bad)
    profile = load_profile()
    top = profile.at(1, 0)
    rotation = profile.at(1, 1)
    assert top is not None and rotation is not None
    assert (kiosk_url("https://ioc.example.vn/grafana/", top)
            == "https://ioc.example.vn/grafana/d/ioc-overview?kiosk&refresh=30s")
    assert (kiosk_url("http://grafana:3000", rotation, "p1a2")
            == "http://grafana:3000/playlists/play/p1a2?kiosk")
    assert "<uid of playlist 'Tường IOC – Các lĩnh vực" in kiosk_url("http://g:3000", rotation)
    for bad in ("grafana:3000", "ftp://g", "http://admin:secret@g:3000", "http://g/?x=1"):
        with pytest.raises(ValueError):
            base_url(bad)


def test_known_dashboards_know_their_height() -> None:
    assert KNOWN["ioc-overview"].rows == 27 and KNOWN["ioc-overview"].name == "overview"
    assert KNOWN["ioc-platform"].title == "Sức khỏe nền tảng"


def test_ioc_wall_show_and_urls(tmp_path: Path) -> None:
    shown = ioc("wall", "show")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "Tường màn hình Trung tâm IOC — 3 × 2 screens" in out
    assert "│ tren-giua · 1920x1080" in out and "▶ luân phiên 1m: 6 bảng" in out
    assert "    2. ioc-econ       Chỉ tiêu kinh tế – xã hội" in out
    assert len({len(line) for line in out.splitlines() if line.startswith(("│", "┌"))}) == 1

    urls = ioc("wall", "urls", "--grafana-url", "http://wall-grafana:3000/")
    assert urls.returncode == 0, urls.stderr
    lines = dict(line.split(None, 1) for line in urls.stdout.splitlines())
    assert lines["tren-giua"] == "http://wall-grafana:3000/d/ioc-overview?kiosk&refresh=30s"
    assert lines["duoi-giua"].startswith("http://wall-grafana:3000/playlists/play/<uid of")
    assert "run `ioc dashboards push`" in urls.stderr

    broken = tmp_path / "wall.toml"
    broken.write_text(DEFAULT_PROFILE.read_text(encoding="utf-8")
                      .replace('dashboard = "ioc-platform"', 'dashboard = "ioc-agri"'),
                      encoding="utf-8")
    bad = ioc("wall", "show", "--profile", str(broken))
    assert bad.returncode == 2
    assert "screen 'duoi-phai' dashboard: unknown dashboard uid 'ioc-agri'" in bad.stderr
    assert ioc("wall", "urls").returncode == 2
