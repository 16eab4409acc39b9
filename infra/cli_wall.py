"""The wall commands of ``ioc``:

    ioc wall show [--profile FILE]                     the screens and what each shows
    ioc wall urls --grafana-url URL [--profile FILE]   the kiosk URL of every screen
    ioc dashboards push --url URL --token TOKEN        folders, dashboards, wall playlists

The profile defaults to the shipped ``infra/wall/wall.toml`` (format in
:mod:`ioc.infra.wall_profile`). A token can be read from a file with ``--token-file`` so it does
not appear in the process list; it is never printed. ``ioc wall urls`` needs the token only to
look up the uids Grafana gave the wall's playlists (it only reads).
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path
from typing import Any

from ioc.infra.settings import Settings

EXIT_USAGE = 2
CELL = 34


def _profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="wall profile (TOML; default: the shipped infra/wall/wall.toml)")


def _token_arguments(parser: argparse.ArgumentParser, required: str) -> None:
    parser.add_argument("--token", default=None, metavar="TOKEN",
                        help=f"Grafana service-account token ({required})")
    parser.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                        help="read the token from this file instead (keeps it out of `ps`)")


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ioc dashboards push`` (the ``dashboards`` parser is in ``cli.py``)."""
    parser.add_argument("--url", default=None, metavar="URL",
                        help="push: Grafana base URL, e.g. http://grafana:3000")
    _token_arguments(parser, "push: Editor role")
    _profile_argument(parser)


def add_wall_parser(sub: Any) -> None:
    s = sub.add_parser("wall", help="the video wall profile: screens and kiosk URLs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("action", choices=["show", "urls"])
    s.add_argument("--grafana-url", default=None, metavar="URL",
                   help="urls: Grafana base URL as the wall PCs reach it")
    _token_arguments(s, "urls: optional, resolves playlist uids")
    _profile_argument(s)
    s.set_defaults(func=cmd_wall)


def _read_token(args: argparse.Namespace) -> str | None:
    if args.token and args.token_file:
        raise SystemExit("ioc: give --token or --token-file, not both")
    if args.token_file:
        try:
            return str(args.token_file.read_text(encoding="utf-8")).strip()
        except OSError as exc:
            raise SystemExit(f"ioc: cannot read the token file: {exc.strerror}") from None
    return str(args.token) if args.token else None


def _load(args: argparse.Namespace) -> Any:
    from ioc.infra.wall_profile import WallProfileError, load_profile

    try:
        return load_profile(args.profile)
    except WallProfileError as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return None


def cmd_wall(args: argparse.Namespace, settings: Settings) -> int:
    profile = _load(args)
    if profile is None:
        return EXIT_USAGE
    if args.action == "show":
        from ioc.infra.wall_profile import known_dashboards

        print(render_layout(profile, {u: d.title for u, d in known_dashboards().items()}))
        return 0
    if not args.grafana_url:
        print("ioc wall urls: --grafana-url is required", file=sys.stderr)
        return EXIT_USAGE
    from ioc.infra.grafana_push import PushError, connect, find_playlist_uids, screen_urls
    from ioc.infra.wall_profile import base_url

    try:
        url = base_url(args.grafana_url)
    except ValueError as exc:
        print(f"ioc wall urls: {exc}", file=sys.stderr)
        return EXIT_USAGE
    token = _read_token(args)
    uids: dict[str, str] = {}
    if token:
        try:
            uids = find_playlist_uids(connect(url, token), url, profile)
        except PushError as exc:
            print(f"ioc wall urls: {exc}", file=sys.stderr)
            return 1
    missing = [s.id for s in profile.screens if s.is_playlist and s.id not in uids]
    for screen, link in screen_urls(url, profile, uids):
        print(f"{screen.id:<12} {link}")
    if missing:
        print("note: playlist uids are assigned by Grafana; run `ioc dashboards push` and pass "
              "--token to fill them in for: " + ", ".join(missing), file=sys.stderr)
    return 0


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    """``ioc dashboards push``: see :mod:`ioc.infra.grafana_push`."""
    from ioc.dashboards.build import DASHBOARDS, FOLDERS, folder_of, render_dict
    from ioc.infra.grafana_push import PushError, connect, push, screen_urls
    from ioc.infra.wall_profile import base_url

    if not args.url:
        print("ioc dashboards push: --url is required", file=sys.stderr)
        return EXIT_USAGE
    token = _read_token(args)
    if not token:
        print("ioc dashboards push: --token or --token-file is required", file=sys.stderr)
        return EXIT_USAGE
    try:
        url = base_url(args.url)
    except ValueError as exc:
        print(f"ioc dashboards push: {exc}", file=sys.stderr)
        return EXIT_USAGE
    profile = _load(args)
    if profile is None:
        return EXIT_USAGE
    boards = [render_dict(name) for name in DASHBOARDS]
    try:
        report = push(connect(url, token), url, boards, [(f.uid, f.title) for f in FOLDERS],
                      lambda board: folder_of(board).uid, profile)
    except PushError as exc:
        print(f"ioc dashboards push: {exc}", file=sys.stderr)
        return 1
    for change in report.changes:
        print(f"{change.kind:<10} {change.key:<14} {change.status:<10} {_nfc(change.title)}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{report.count('created')} created, {report.count('updated')} updated, "
          f"{report.count('unchanged')} unchanged at {url}")
    print("kiosk URLs of the wall screens:")
    for screen, link in screen_urls(url, profile, report.playlist_uids):
        print(f"  {screen.id:<12} {link}")
    return 0


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fit(text: str, width: int) -> str:
    text = _nfc(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_layout(profile: Any, titles: dict[str, str]) -> str:
    """The wall as a grid of boxes (one per screen) followed by each screen's details."""
    inner = CELL - 2

    def cell_lines(column: int, row: int) -> list[str]:
        screen = profile.at(column, row)
        if screen is None:
            return ["(trống)", "", ""]
        what = (f"luân phiên {screen.interval}: {len(screen.dashboards)} bảng"
                if screen.is_playlist else titles.get(screen.dashboards[0], screen.dashboards[0]))
        return [f"{screen.id} · {screen.resolution}", screen.title, f"▶ {what}"]

    bar = "─" * CELL
    out = [f"{_nfc(profile.name)} — {profile.columns} × {profile.rows} screens",
           f"profile: {profile.source}", "",
           "┌" + "┬".join([bar] * profile.columns) + "┐"]
    for row in range(profile.rows):
        cells = [cell_lines(c, row) for c in range(profile.columns)]
        for line in range(3):
            out.append("│" + "│".join(f" {_fit(cells[c][line], inner):<{inner}} "
                                      for c in range(profile.columns)) + "│")
        out.append(("├" + "┼".join([bar] * profile.columns) + "┤") if row < profile.rows - 1
                   else ("└" + "┴".join([bar] * profile.columns) + "┘"))
    out.append("")
    for screen in sorted(profile.screens, key=lambda s: (s.row, s.column)):
        kind = (f"playlist, {screen.interval} per dashboard" if screen.is_playlist
                else f"refresh {screen.refresh}")
        out.append(f"{screen.id} (column {screen.column}, row {screen.row}; "
                   f"{screen.resolution} at scale {screen.scale:g}; {kind}): "
                   f"{_nfc(screen.title)}")
        for n, uid in enumerate(screen.dashboards, start=1):
            prefix = f"{n}. " if screen.is_playlist else ""
            out.append(f"    {prefix}{uid:<14} {_nfc(titles.get(uid, '?'))}")
    return "\n".join(out)
