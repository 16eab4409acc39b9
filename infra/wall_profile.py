"""The wall profile: which screens the video wall has and what each one shows.

A deployment describes its video wall in one TOML file (the shipped default is
``infra/wall/wall.toml``; ``ioc wall show --profile FILE`` uses another)::

    [wall]
    name = "Tường màn hình Trung tâm IOC"
    columns = 3            # screens across
    rows = 2               # screens down
    resolution = "1920x1080"   # default for every screen (pixels)
    scale = 1.0            # default browser zoom / device scale factor
    refresh = "30s"        # default dashboard refresh

    [[screens]]
    id = "tren-giua"       # lowercase letters, digits, dashes: names the screen and its playlist
    title = "Toàn cảnh tỉnh"
    column = 1             # 0-based, from the left
    row = 0                # 0-based, from the top
    dashboard = "ioc-overview"          # one dashboard, by uid ...

    [[screens]]
    id = "duoi-giua"
    title = "Các lĩnh vực (luân phiên)"
    column = 1
    row = 1
    playlist = ["ioc-traffic", "ioc-security"]  # ... or a rotation of dashboards, by uid
    interval = "1m"                      # how long each dashboard stays (playlists only)

A screen may also set its own ``resolution``, ``scale`` and ``refresh``. Durations are a whole
number of seconds, minutes or hours (``30s``, ``2m``, ``1h``); refresh at least 5 s (Grafana's
default minimum), playlist interval at least 10 s.

Validation (:func:`load_profile`) reports every problem at once in one
:class:`WallProfileError`: unknown keys (typos), a dashboard uid that is not registered in
``ioc.dashboards.build.DASHBOARDS`` (the message lists the known uids), duplicate screen ids,
titles or positions, positions outside the wall, a screen with both or neither of
``dashboard`` and ``playlist``, bad durations, and a dashboard taller than its screen shows in
kiosk mode (:func:`rows_that_fit`).

Playlists: Grafana's playlist API assigns a playlist's uid itself (it ignores a uid on create),
so a screen's playlist is found by its name, :attr:`Screen.playlist_name`, which ends with the
screen id in brackets; ``ioc dashboards push`` creates or updates it and prints the kiosk URLs.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ioc.infra

DEFAULT_PROFILE = Path(ioc.infra.__file__).resolve().parent / "wall" / "wall.toml"
"""The profile shipped with the platform (``infra/wall/wall.toml``)."""

PLAYLIST_PREFIX = "Tường IOC – "

# Grafana's dashboard grid: 30 px rows with 8 px margins. Kiosk mode still pads the page; 62 px
# is what is left of a 1080 px screen under the 27 rows (1018 px) the wall dashboards use, so
# rows_that_fit(1080) == ioc.dashboards.common.WALL_ROWS.
ROW_PX = 30
MARGIN_PX = 8
KIOSK_CHROME_PX = 62

MIN_REFRESH_S = 5
MIN_INTERVAL_S = 10

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,29}")
_DURATION = re.compile(r"([1-9][0-9]*)([smh])")
_RESOLUTION = re.compile(r"([1-9][0-9]{2,4})x([1-9][0-9]{2,4})")
_WALL_KEYS = {"name", "columns", "rows", "resolution", "scale", "refresh"}
_SCREEN_KEYS = {"id", "title", "column", "row", "dashboard", "playlist", "interval",
                "resolution", "scale", "refresh"}


class WallProfileError(ValueError):
    """The profile cannot be used; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"wall profile {source}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class DashboardInfo:
    """What the wall needs to know about a registered dashboard."""

    uid: str
    name: str
    title: str
    rows: int
    """Grid rows the dashboard uses (bottom edge of its lowest panel)."""


@dataclass(frozen=True)
class Screen:
    id: str
    title: str
    column: int
    row: int
    width: int
    height: int
    scale: float
    refresh: str
    dashboards: tuple[str, ...]
    """The one dashboard uid, or the playlist's uids in order."""
    interval: str | None = None
    """Playlist rotation interval; ``None`` for a single-dashboard screen."""

    @property
    def is_playlist(self) -> bool:
        return self.interval is not None

    @property
    def playlist_name(self) -> str:
        """The Grafana playlist's name; the bracketed screen id at the end is the key push
        finds it by."""
        return f"{PLAYLIST_PREFIX}{self.title} [{self.id}]"

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class WallProfile:
    name: str
    columns: int
    rows: int
    screens: tuple[Screen, ...]
    source: str

    def at(self, column: int, row: int) -> Screen | None:
        return next((s for s in self.screens if (s.column, s.row) == (column, row)), None)

    @property
    def dashboard_uids(self) -> list[str]:
        """Every uid the wall shows, first appearance first."""
        return list(dict.fromkeys(uid for s in self.screens for uid in s.dashboards))


def duration_s(text: str) -> int:
    """Seconds of a ``30s`` / ``2m`` / ``1h`` duration; ``ValueError`` otherwise."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 2m or 1h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def rows_that_fit(height_px: int, scale: float = 1.0) -> int:
    """Dashboard grid rows a kiosk-mode browser of ``height_px`` device pixels at ``scale``
    shows without scrolling."""
    css = int(height_px / scale)
    return max(0, (css - KIOSK_CHROME_PX + MARGIN_PX) // (ROW_PX + MARGIN_PX))


def known_dashboards() -> dict[str, DashboardInfo]:
    """uid → info of every dashboard registered in ``ioc.dashboards.build.DASHBOARDS``."""
    from ioc.dashboards.build import DASHBOARDS, iter_panels, render_dict

    known = {}
    for name in DASHBOARDS:
        board = render_dict(name)
        rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in iter_panels(board)),
                   default=0)
        known[board["uid"]] = DashboardInfo(board["uid"], name, board["title"], rows)
    return known


def load_profile(path: Path | str | None = None,
                 known: Mapping[str, DashboardInfo] | None = None) -> WallProfile:
    """Read and validate a profile (default: the shipped one) against the registered
    dashboards (or ``known``). Raises :class:`WallProfileError`."""
    path = Path(path) if path is not None else DEFAULT_PROFILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WallProfileError(str(path), ["file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise WallProfileError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_profile(data, known if known is not None else known_dashboards(), str(path))


def parse_profile(data: Mapping[str, Any], known: Mapping[str, DashboardInfo],
                  source: str = "<profile>") -> WallProfile:
    """Validate parsed TOML data; see the module docstring for the rules."""
    v = _Validator(known)
    wall = v.table(data.get("wall"), "[wall]")
    for key in sorted(set(data) - {"wall", "screens"}):
        v.problem(f"unknown top-level key {key!r} (expected [wall] and [[screens]])")
    for key in sorted(set(wall) - _WALL_KEYS):
        v.problem(f"[wall]: unknown key {key!r} (expected {', '.join(sorted(_WALL_KEYS))})")
    name = v.text(wall.get("name"), "[wall] name")
    columns = v.count(wall.get("columns"), "[wall] columns")
    rows = v.count(wall.get("rows"), "[wall] rows")
    size = v.resolution(wall.get("resolution", "1920x1080"), "[wall] resolution")
    scale = v.scale(wall.get("scale", 1.0), "[wall] scale")
    refresh = v.duration(wall.get("refresh", "30s"), "[wall] refresh", MIN_REFRESH_S)

    raw_screens = data.get("screens")
    if not isinstance(raw_screens, list) or not raw_screens:
        v.problem("no [[screens]]: the wall needs at least one screen")
        raw_screens = []
    screens: list[Screen] = []
    seen_ids: dict[str, int] = {}
    seen_titles: dict[str, str] = {}
    seen_pos: dict[tuple[int, int], str] = {}
    for i, raw in enumerate(raw_screens, start=1):
        screen = v.screen(raw, i, columns, rows, size, scale, refresh)
        if screen is None:
            continue
        if screen.id in seen_ids:
            v.problem(f"duplicate screen id {screen.id!r} (screens {seen_ids[screen.id]} "
                      f"and {i})")
        seen_ids.setdefault(screen.id, i)
        if screen.title in seen_titles:
            v.problem(f"screens {seen_titles[screen.title]!r} and {screen.id!r} have the same "
                      f"title {screen.title!r}")
        seen_titles.setdefault(screen.title, screen.id)
        pos = (screen.column, screen.row)
        if pos in seen_pos:
            v.problem(f"screens {seen_pos[pos]!r} and {screen.id!r} are both at column "
                      f"{pos[0]}, row {pos[1]}")
        seen_pos.setdefault(pos, screen.id)
        screens.append(screen)
    if v.problems:
        raise WallProfileError(source, v.problems)
    return WallProfile(name, columns, rows, tuple(screens), source)


class _Validator:
    """Collects problems instead of stopping at the first, so one run shows them all."""

    def __init__(self, known: Mapping[str, DashboardInfo]) -> None:
        self.known = known
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def table(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.problem(f"{where} is missing or not a table")
            return {}
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{where}: a non-empty string is required")
            return ""
        return value.strip()

    def count(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
            self.problem(f"{where}: a whole number from 1 to 12 is required, got {value!r}")
            return 0
        return value

    def index(self, value: Any, where: str, size: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"{where}: a whole number is required, got {value!r}")
            return -1
        if size and not 0 <= value < size:
            self.problem(f"{where} = {value} is outside the wall (0 to {size - 1})")
        return value

    def resolution(self, value: Any, where: str) -> tuple[int, int]:
        m = _RESOLUTION.fullmatch(value) if isinstance(value, str) else None
        if not m:
            self.problem(f"{where}: expected WIDTHxHEIGHT in pixels like \"1920x1080\", "
                         f"got {value!r}")
            return (1920, 1080)
        return int(m.group(1)), int(m.group(2))

    def scale(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.5 <= value <= 4:
            self.problem(f"{where}: a number from 0.5 to 4 is required, got {value!r}")
            return 1.0
        return float(value)

    def duration(self, value: Any, where: str, minimum_s: int) -> str:
        try:
            seconds = duration_s(value)
        except ValueError as exc:
            self.problem(f"{where}: {exc}")
            return "30s"
        if seconds < minimum_s:
            self.problem(f"{where}: {value} is shorter than the minimum {minimum_s}s")
        return str(value)

    def uid(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.problem(f"{where}: a dashboard uid (string) is required, got {value!r}")
            return None
        if value not in self.known:
            self.problem(f"{where}: unknown dashboard uid {value!r}; registered: "
                         f"{', '.join(sorted(self.known)) or 'none'} (register the dashboard "
                         "in ioc.dashboards.build.DASHBOARDS or remove it from the profile)")
            return None
        return value

    def screen(self, raw: Any, i: int, columns: int, rows: int, size: tuple[int, int],
               scale: float, refresh: str) -> Screen | None:
        if not isinstance(raw, dict):
            self.problem(f"screen {i}: not a table")
            return None
        sid = raw.get("id")
        if not isinstance(sid, str) or not _ID.fullmatch(sid):
            self.problem(f"screen {i}: id {sid!r} must be 1–30 lowercase letters, digits or "
                         "dashes, starting with a letter or digit")
            sid = f"#{i}"
        where = f"screen {sid!r}"
        for key in sorted(set(raw) - _SCREEN_KEYS):
            self.problem(f"{where}: unknown key {key!r} (expected "
                         f"{', '.join(sorted(_SCREEN_KEYS))})")
        title = self.text(raw.get("title"), f"{where} title")
        column = self.index(raw.get("column"), f"{where} column", columns)
        row = self.index(raw.get("row"), f"{where} row", rows)
        width, height = (self.resolution(raw["resolution"], f"{where} resolution")
                         if "resolution" in raw else size)
        own_scale = self.scale(raw["scale"], f"{where} scale") if "scale" in raw else scale
        own_refresh = (self.duration(raw["refresh"], f"{where} refresh", MIN_REFRESH_S)
                       if "refresh" in raw else refresh)
        has_dash, has_list = "dashboard" in raw, "playlist" in raw
        uids: list[str] = []
        interval: str | None = None
        if has_dash == has_list:
            self.problem(f"{where}: set exactly one of 'dashboard' (one uid) or 'playlist' "
                         "(a list of uids)")
        elif has_dash:
            uid = self.uid(raw["dashboard"], f"{where} dashboard")
            uids = [uid] if uid else []
            if "interval" in raw:
                self.problem(f"{where}: 'interval' only applies to a playlist")
        else:
            playlist = raw["playlist"]
            if not isinstance(playlist, list) or not playlist:
                self.problem(f"{where} playlist: a non-empty list of dashboard uids is required")
                playlist = []
            for n, item in enumerate(playlist, start=1):
                uid = self.uid(item, f"{where} playlist item {n}")
                if uid:
                    uids.append(uid)
            if "interval" not in raw:
                self.problem(f"{where}: a playlist needs an 'interval' (e.g. \"1m\")")
                interval = "1m"
            else:
                interval = self.duration(raw["interval"], f"{where} interval", MIN_INTERVAL_S)
        fit = rows_that_fit(height, own_scale)
        for uid in dict.fromkeys(uids):
            info = self.known[uid]
            if info.rows > fit:
                self.problem(f"{where}: dashboard {uid!r} is {info.rows} grid rows tall but a "
                             f"{width}x{height} screen at scale {own_scale:g} shows {fit} "
                             "in kiosk mode")
        return Screen(sid, title, column, row, width, height, own_scale, own_refresh,
                      tuple(uids), interval)


def base_url(grafana_url: str) -> str:
    """``grafana_url`` without a trailing slash; rejects what is not an http(s) URL and URLs
    with credentials in them (tokens go in ``--token``, never in a URL that gets printed)."""
    parts = urlsplit(grafana_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {grafana_url!r}")
    if parts.username or parts.password:
        raise ValueError("the Grafana URL must not contain credentials; pass a token instead")
    if parts.query or parts.fragment:
        raise ValueError(f"the Grafana URL must not have a query or fragment: {grafana_url!r}")
    return grafana_url.rstrip("/")


def kiosk_url(grafana_url: str, screen: Screen, playlist_uid: str | None = None) -> str:
    """The URL a wall PC's browser opens for ``screen``, full screen without Grafana's menus.

    A single dashboard: ``/d/<uid>?kiosk&refresh=<refresh>``. A playlist:
    ``/playlists/play/<uid>?kiosk`` — its uid is Grafana's (see the module docstring); without
    it the URL holds a placeholder naming the playlist.
    """
    base = base_url(grafana_url)
    if not screen.is_playlist:
        return f"{base}/d/{screen.dashboards[0]}?kiosk&refresh={screen.refresh}"
    uid = playlist_uid or f"<uid of playlist '{screen.playlist_name}'>"
    return f"{base}/playlists/play/{uid}?kiosk"
