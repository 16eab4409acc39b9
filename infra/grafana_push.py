"""``ioc dashboards push``: put the IOC folders, dashboards and wall playlists into a running
Grafana through its HTTP API (grafana-client), for a Grafana whose provisioning folder we do
not control. File provisioning (``ioc dashboards build``) and push are alternatives: Grafana
refuses API updates of a dashboard it loaded from files, and push says so.

Contract:

- **Folders** "IOC – Màn hình tường" (uid ``ioc``) and "IOC – Vận hành" (uid ``ioc-ops``):
  created when missing, renamed when the title differs.
- **Dashboards**: every entry of ``ioc.dashboards.build.DASHBOARDS``, uploaded with
  ``overwrite: true`` by uid into the folder its tags choose (the same as the provisioning
  files). A dashboard whose stored model already equals ours (every key we send; Grafana's own
  ``id`` and ``version`` are ignored) in the right folder is left alone.
- **Playlists**: one per playlist screen of the wall profile, found by its name (Grafana's
  legacy playlist API assigns uids itself), created or updated so that its interval and items
  (``dashboard_by_uid``, in order) match the profile.
- **Idempotent**: every object is read before it is written and written only when it differs,
  so a second push reports everything ``unchanged`` and sends no write request.
- Data sources are not pushed (they hold credentials): push warns when ``ioc-clickhouse`` or
  ``ioc-prometheus`` is missing in that Grafana.
- The token is sent as ``Authorization: Bearer …`` and never printed; errors name the URL
  (without credentials) and the HTTP status, e.g. 401 for a rejected token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from ioc.infra.wall_profile import PLAYLIST_PREFIX, Screen, WallProfile, base_url, kiosk_url

T = TypeVar("T")
PUSH_MESSAGE = "ioc dashboards push"
REQUIRED_DATASOURCES = ("ioc-clickhouse", "ioc-prometheus")


class PushError(RuntimeError):
    """Push stopped: Grafana unreachable, token rejected, or a write refused."""


@dataclass(frozen=True)
class Change:
    kind: str  # folder | dashboard | playlist
    key: str  # uid (folders, dashboards) or screen id (playlists)
    title: str
    status: str  # created | updated | unchanged


@dataclass
class PushReport:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    playlist_uids: dict[str, str] = field(default_factory=dict)
    """Screen id → uid of its playlist in Grafana."""

    def count(self, status: str) -> int:
        return sum(1 for c in self.changes if c.status == status)


def connect(url: str, token: str, timeout: float = 10.0) -> Any:
    """A ``grafana_client.GrafanaApi`` for ``url`` (``http(s)://host[:port][/sub/path]``)
    authenticating with a bearer token."""
    from grafana_client import GrafanaApi

    url = base_url(url)
    if not token:
        raise PushError("no Grafana token given")
    # grafana-client appends "api" to the URL's path directly: a sub-path needs its slash.
    api = GrafanaApi.from_url(url + "/", credential=token, timeout=timeout)
    return api


def _call(url: str, action: str, fn: Callable[[], T]) -> T:
    """Run one API call, turning client exceptions into a :class:`PushError` that names the
    action and Grafana's answer (never the token)."""
    import niquests
    from grafana_client.client import (
        GrafanaClientError,
        GrafanaException,
        GrafanaUnauthorizedError,
    )

    try:
        return fn()
    except GrafanaUnauthorizedError:
        raise PushError(f"Grafana at {url} rejected the token (401 Unauthorized) while trying "
                        f"to {action}; use a service-account token with the Editor role") from None
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise PushError(f"the token may not {action} in Grafana at {url} (403 Forbidden): "
                            f"{exc.message}") from None
        raise PushError(f"Grafana at {url} refused to {action}: {exc.message}") from None
    except GrafanaException as exc:
        raise PushError(f"cannot {action}: Grafana at {url} did not answer properly "
                        f"({exc.message})") from None
    except (niquests.exceptions.RequestException, OSError) as exc:
        raise PushError(f"cannot reach Grafana at {url} ({type(exc).__name__}: {exc}) while "
                        f"trying to {action}") from None


def _get_or_none(url: str, action: str, fn: Callable[[], T]) -> T | None:
    """Like :func:`_call`, but a 404 means "not there"."""
    try:
        return _call(url, action, lambda: _raise_404(fn))
    except _NotFound:
        return None


class _NotFound(Exception):
    pass


def _raise_404(fn: Callable[[], T]) -> T:
    from grafana_client.client import GrafanaClientError

    try:
        return fn()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            raise _NotFound from None
        raise


def playlist_items(screen: Screen, titles: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"type": "dashboard_by_uid", "value": uid, "order": n,
             "title": titles.get(uid, uid)}
            for n, uid in enumerate(screen.dashboards, start=1)]


def push(api: Any, url: str, dashboards: Sequence[dict[str, Any]],
         folders: Sequence[tuple[str, str]], folder_of: Callable[[dict[str, Any]], str],
         profile: WallProfile) -> PushReport:
    """Push ``folders`` ((uid, title) pairs), ``dashboards`` (Grafana JSON, each into
    ``folder_of(board)``'s uid) and the profile's playlists through ``api``."""
    report = PushReport()
    _check_datasources(api, url, report)
    for uid, title in folders:
        _push_folder(api, url, uid, title, report)
    for board in dashboards:
        _push_dashboard(api, url, board, folder_of(board), report)
    titles = {b["uid"]: b.get("title", b["uid"]) for b in dashboards}
    screens = [s for s in profile.screens if s.is_playlist]
    if screens:
        existing = _call(url, "list playlists", lambda: api.client.GET("/playlists")) or []
        for screen in screens:
            _push_playlist(api, url, screen, titles, existing, report)
    return report


def _check_datasources(api: Any, url: str, report: PushReport) -> None:
    for uid in REQUIRED_DATASOURCES:
        found = _get_or_none(url, f"read data source {uid}",
                             partial(api.datasource.get_datasource_by_uid, uid))
        if found is None:
            report.warnings.append(
                f"data source {uid!r} does not exist in this Grafana: its panels will show "
                "errors until it is created (see infra/grafana/provisioning/datasources)")


def _push_folder(api: Any, url: str, uid: str, title: str, report: PushReport) -> None:
    current = _get_or_none(url, f"read folder {uid}", lambda: api.folder.get_folder(uid))
    if current is None:
        _call(url, f"create folder {uid}", lambda: api.folder.create_folder(title, uid=uid))
        status = "created"
    elif current.get("title") != title:
        _call(url, f"rename folder {uid}",
              lambda: api.folder.update_folder(uid, title=title,
                                               version=current.get("version"), overwrite=True))
        status = "updated"
    else:
        status = "unchanged"
    report.changes.append(Change("folder", uid, title, status))


def _same_dashboard(ours: dict[str, Any], stored: dict[str, Any]) -> bool:
    return all(stored.get(key) == value for key, value in ours.items()
               if key not in ("id", "version"))


def _push_dashboard(api: Any, url: str, board: dict[str, Any], folder_uid: str,
                    report: PushReport) -> None:
    uid = board["uid"]
    current = _get_or_none(url, f"read dashboard {uid}",
                           lambda: api.dashboard.get_dashboard(uid))
    if current is not None:
        meta = current.get("meta") or {}
        if (_same_dashboard(board, current.get("dashboard") or {})
                and meta.get("folderUid") == folder_uid):
            report.changes.append(Change("dashboard", uid, board.get("title", uid), "unchanged"))
            return
        if meta.get("provisioned"):
            raise PushError(f"dashboard {uid} is provisioned from files in Grafana at {url}; "
                            "it cannot be changed through the API. Use either file "
                            "provisioning (ioc dashboards build) or push, not both.")
    payload = {"dashboard": {k: v for k, v in board.items() if k not in ("id", "version")},
               "folderUid": folder_uid, "overwrite": True, "message": PUSH_MESSAGE}
    _call(url, f"upload dashboard {uid}", lambda: api.dashboard.update_dashboard(payload))
    report.changes.append(Change("dashboard", uid, board.get("title", uid),
                                 "created" if current is None else "updated"))


def _push_playlist(api: Any, url: str, screen: Screen, titles: Mapping[str, str],
                   existing: list[dict[str, Any]], report: PushReport) -> None:
    marker = f"[{screen.id}]"
    matches = sorted((p for p in existing
                      if str(p.get("name", "")).startswith(PLAYLIST_PREFIX)
                      and str(p.get("name", "")).endswith(marker)),
                     key=lambda p: str(p.get("uid")))
    items = playlist_items(screen, titles)
    body = {"name": screen.playlist_name, "interval": screen.interval, "items": items}
    if not matches:
        created = _call(url, f"create playlist {screen.playlist_name!r}",
                        lambda: api.client.POST("/playlists", json=body))
        report.playlist_uids[screen.id] = str(created["uid"])
        report.changes.append(Change("playlist", screen.id, screen.playlist_name, "created"))
        return
    if len(matches) > 1:
        report.warnings.append(f"{len(matches)} playlists end with {marker}; using uid "
                               f"{matches[0]['uid']}, delete the others")
    uid = str(matches[0]["uid"])
    report.playlist_uids[screen.id] = uid
    stored = _call(url, f"read playlist {uid}", lambda: api.client.GET(f"/playlists/{uid}"))
    same = (stored.get("name") == screen.playlist_name
            and stored.get("interval") == screen.interval
            and [(i.get("type"), i.get("value")) for i in stored.get("items") or []]
            == [(i["type"], i["value"]) for i in items])
    if same:
        report.changes.append(Change("playlist", screen.id, screen.playlist_name, "unchanged"))
        return
    _call(url, f"update playlist {uid}",
          lambda: api.client.PUT(f"/playlists/{uid}", json={"uid": uid, **body}))
    report.changes.append(Change("playlist", screen.id, screen.playlist_name, "updated"))


def find_playlist_uids(api: Any, url: str, profile: WallProfile) -> dict[str, str]:
    """Screen id → uid of its playlist already in Grafana (read-only; for ``ioc wall urls``)."""
    existing = _call(url, "list playlists", lambda: api.client.GET("/playlists")) or []
    found: dict[str, str] = {}
    for screen in profile.screens:
        if not screen.is_playlist:
            continue
        marker = f"[{screen.id}]"
        uids = sorted(str(p.get("uid")) for p in existing
                      if str(p.get("name", "")).startswith(PLAYLIST_PREFIX)
                      and str(p.get("name", "")).endswith(marker))
        if uids:
            found[screen.id] = uids[0]
    return found


def screen_urls(url: str, profile: WallProfile,
                playlist_uids: Mapping[str, str]) -> list[tuple[Screen, str]]:
    return [(s, kiosk_url(url, s, playlist_uids.get(s.id))) for s in profile.screens]
