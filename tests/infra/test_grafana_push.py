"""``ioc dashboards push`` up to the HTTP boundary: the real grafana-client against a local HTTP
server that implements the Grafana API routes push uses (tests/fake_grafana.py). What is not
tested: a real Grafana (its API answers are modelled on Grafana 10/11's), and rendering."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_grafana import FakeGrafana

from ioc.dashboards.build import DASHBOARDS, FOLDERS, folder_of, render_dict
from ioc.infra.grafana_push import PushError, PushReport, connect, find_playlist_uids, push
from ioc.infra.wall_profile import load_profile

TOKEN = "glsa_test-0123456789abcdef"  # noqa: S105 - a fake token for a fake server
IOC = str(Path(sys.executable).parent / "ioc")
BOARDS = [render_dict(name) for name in DASHBOARDS]
FOLDER_PAIRS = [(f.uid, f.title) for f in FOLDERS]
PROFILE = load_profile()


def run_push(url: str, token: str = TOKEN) -> PushReport:
    return push(connect(url, token), url, BOARDS, FOLDER_PAIRS,
                lambda board: folder_of(board).uid, PROFILE)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana(TOKEN) as fake:
        yield fake


def statuses(report: PushReport) -> dict[tuple[str, str], str]:
    return {(c.kind, c.key): c.status for c in report.changes}


def test_first_push_creates_folders_dashboards_and_playlists(grafana: FakeGrafana) -> None:
    report = run_push(grafana.url)
    assert statuses(report) == {
        ("folder", "ioc"): "created", ("folder", "ioc-ops"): "created",
        **{("dashboard", b["uid"]): "created" for b in BOARDS},
        ("playlist", "duoi-giua"): "created"}
    assert report.warnings == []
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}

    posts = [(r.path, r.body) for r in grafana.writes()]
    assert posts[:2] == [("/api/folders", {"title": "IOC – Màn hình tường", "uid": "ioc"}),
                         ("/api/folders", {"title": "IOC – Vận hành", "uid": "ioc-ops"})]
    uploads = {body["dashboard"]["uid"]: body for path, body in posts
               if path == "/api/dashboards/db"}
    assert set(uploads) == {b["uid"] for b in BOARDS}
    for board in BOARDS:
        body = uploads[board["uid"]]
        assert body["overwrite"] is True and body["message"] == "ioc dashboards push"
        assert body["dashboard"] == board  # exactly the generated JSON
        assert body["folderUid"] == ("ioc-ops" if board["uid"] == "ioc-platform" else "ioc")
    (playlist,) = [body for path, body in posts if path == "/api/playlists"]
    assert playlist == {
        "name": "Tường IOC – Các lĩnh vực (luân phiên) [duoi-giua]", "interval": "1m",
        "items": [{"type": "dashboard_by_uid", "value": uid, "order": n, "title": title}
                  for n, (uid, title) in enumerate([
                      ("ioc-cyber", "Thông tin trên mạng và an toàn thông tin"),
                      ("ioc-econ", "Chỉ tiêu kinh tế – xã hội"),
                      ("ioc-egov", "Chính quyền điện tử"),
                      ("ioc-health", "Y tế"),
                      ("ioc-edu", "Giáo dục"),
                      ("ioc-feedback", "Phản ánh kiến nghị")], start=1)]}
    (uid,) = grafana.state.playlists
    assert report.playlist_uids == {"duoi-giua": uid}
    # dashboards were uploaded after their folders existed, playlists after the dashboards
    order = [r.path for r in grafana.writes()]
    assert order.index("/api/dashboards/db") > order.index("/api/folders")
    assert order.index("/api/playlists") > len(order) - 2


def test_second_push_changes_nothing(grafana: FakeGrafana) -> None:
    run_push(grafana.url)
    state_before = repr(grafana.state)
    grafana.requests.clear()
    report = run_push(grafana.url)
    assert set(statuses(report).values()) == {"unchanged"}
    assert report.count("unchanged") == len(BOARDS) + 3
    assert grafana.writes() == []  # read before write: no write request at all
    assert repr(grafana.state) == state_before


def test_push_repairs_what_was_changed_in_grafana(grafana: FakeGrafana) -> None:
    run_push(grafana.url)
    s = grafana.state
    s.folders["ioc"]["title"] = "Đổi tên tay"
    s.dashboards["ioc-traffic"]["dashboard"]["title"] = "Sửa trên giao diện"
    s.dashboards["ioc-cyber"]["folderUid"] = "ioc-ops"
    (uid,) = s.playlists
    s.playlists[uid]["interval"] = "5m"
    s.playlists[uid]["items"].pop()
    grafana.requests.clear()
    report = run_push(grafana.url)
    changed = {k: v for k, v in statuses(report).items() if v != "unchanged"}
    assert changed == {("folder", "ioc"): "updated", ("dashboard", "ioc-traffic"): "updated",
                       ("dashboard", "ioc-cyber"): "updated", ("playlist", "duoi-giua"): "updated"}
    writes = [(r.method, r.path) for r in grafana.writes()]
    assert writes == [("PUT", "/api/folders/ioc"), ("POST", "/api/dashboards/db"),
                      ("POST", "/api/dashboards/db"), ("PUT", f"/api/playlists/{uid}")]
    assert grafana.writes()[0].body == {"title": "IOC – Màn hình tường", "version": 1,
                                        "overwrite": True}
    assert s.dashboards["ioc-traffic"]["dashboard"]["title"] == "Giao thông và trật tự đô thị"
    assert s.dashboards["ioc-traffic"]["dashboard"]["version"] == 2
    assert s.dashboards["ioc-cyber"]["folderUid"] == "ioc"
    assert s.playlists[uid]["interval"] == "1m" and len(s.playlists[uid]["items"]) == 6
    assert len(s.playlists) == 1  # found by name, not duplicated
    grafana.requests.clear()
    assert set(statuses(run_push(grafana.url)).values()) == {"unchanged"}


def test_missing_datasources_are_reported_not_fatal(grafana: FakeGrafana) -> None:
    grafana.state.datasources = {"ioc-clickhouse"}
    report = run_push(grafana.url)
    assert report.warnings == [
        "data source 'ioc-prometheus' does not exist in this Grafana: its panels will show "
        "errors until it is created (see infra/grafana/provisioning/datasources)"]
    assert report.count("created") == len(BOARDS) + 3


def test_a_rejected_token_is_a_clear_error_that_does_not_show_it(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError) as err:
        run_push(grafana.url, token="wrong-token")  # noqa: S106
    text = str(err.value)
    assert f"Grafana at {grafana.url} rejected the token (401 Unauthorized)" in text
    assert "wrong-token" not in text and TOKEN not in text
    assert grafana.writes() == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_grafana_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(PushError) as err:
        run_push(url)
    assert str(err.value).startswith(f"cannot reach Grafana at {url} (")
    assert TOKEN not in str(err.value)


def test_a_provisioned_dashboard_that_differs_is_refused_with_advice(
        grafana: FakeGrafana) -> None:
    run_push(grafana.url)
    stored = grafana.state.dashboards["ioc-overview"]
    stored["provisioned"] = True  # loaded from the same files: nothing to do
    assert statuses(run_push(grafana.url))[("dashboard", "ioc-overview")] == "unchanged"
    stored["dashboard"]["title"] = "Khác"
    with pytest.raises(PushError, match=r"provisioned from files .* Use either file "
                                        r"provisioning"):
        run_push(grafana.url)


def test_grafana_under_a_sub_path() -> None:
    with FakeGrafana(TOKEN, prefix="/grafana") as fake:
        report = run_push(fake.url)
        assert report.count("created") == len(BOARDS) + 3
        assert all(r.path.startswith("/grafana/api/") for r in fake.requests)
        assert find_playlist_uids(connect(fake.url, TOKEN), fake.url, PROFILE) == \
            report.playlist_uids


def ioc(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IOC, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "IOC_METRICS_PORT": "0"}, **kwargs)


def test_the_command_as_a_user_runs_it(grafana: FakeGrafana, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    first = ioc("dashboards", "push", "--url", grafana.url, "--token-file", str(token_file))
    assert first.returncode == 0, first.stderr
    (uid,) = grafana.state.playlists
    assert f"0 updated, 0 unchanged at {grafana.url}" in first.stdout
    assert "dashboard  ioc-platform   created    Sức khỏe nền tảng" in first.stdout
    assert f"duoi-giua    {grafana.url}/playlists/play/{uid}?kiosk" in first.stdout
    assert f"tren-giua    {grafana.url}/d/ioc-overview?kiosk&refresh=30s" in first.stdout

    second = ioc("dashboards", "push", "--url", grafana.url, "--token", TOKEN)
    assert second.returncode == 0, second.stderr
    assert f"0 created, 0 updated, {len(BOARDS) + 3} unchanged" in second.stdout

    urls = ioc("wall", "urls", "--grafana-url", grafana.url, "--token-file", str(token_file))
    assert urls.returncode == 0, urls.stderr
    assert f"duoi-giua    {grafana.url}/playlists/play/{uid}?kiosk" in urls.stdout

    denied = ioc("dashboards", "push", "--url", grafana.url, "--token", "bad-token")
    assert denied.returncode == 1
    assert "rejected the token (401 Unauthorized)" in denied.stderr
    for result in (first, second, urls, denied):
        assert TOKEN not in result.stdout + result.stderr
        assert "bad-token" not in result.stdout + result.stderr

    missing = ioc("dashboards", "push", "--url", grafana.url)
    assert missing.returncode == 2 and "--token or --token-file is required" in missing.stderr
    creds = ioc("dashboards", "push", "--url", "http://admin:pw@127.0.0.1:1", "--token", "x")
    assert creds.returncode == 2 and "must not contain credentials" in creds.stderr
