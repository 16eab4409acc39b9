"""Just enough of Grafana's HTTP API, with in-memory state, to test ``ioc dashboards push`` up to
the HTTP boundary: a real HTTP server on 127.0.0.1 (stdlib ``http.server`` in a thread) that the
unmodified grafana-client talks to. It records every request.

Routes (as Grafana 10/11 answers them; bodies trimmed to the fields push reads):
``GET /api/datasources/uid/:uid``, ``GET|PUT /api/folders/:uid``, ``POST /api/folders``,
``GET /api/dashboards/uid/:uid``, ``POST /api/dashboards/db``, ``GET /api/search``,
``GET|POST /api/playlists``, ``GET|PUT /api/playlists/:uid``. Every route requires
``Authorization: Bearer <token>`` (401 otherwise). Like Grafana, playlist creation ignores a
``uid`` in the body and assigns one.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: str | None


@dataclass
class State:
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    playlists: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: set[str] = field(default_factory=lambda: {"ioc-clickhouse", "ioc-prometheus"})
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeGrafana:
    def __init__(self, token: str, prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.state = State()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                req = Request(self.command, parts.path, parse_qs(parts.query), body,
                              self.headers.get("Authorization"))
                with fake.lock:
                    fake.requests.append(req)
                    status, payload = fake.route(req)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def __enter__(self) -> FakeGrafana:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    # -- routing -----------------------------------------------------------------------------

    def route(self, req: Request) -> tuple[int, Any]:
        if req.authorization != f"Bearer {self.token}":
            return 401, {"message": "Unauthorized"}
        if not req.path.startswith(self.prefix + "/api/"):
            return 404, {"message": "Not found"}
        parts = req.path[len(self.prefix) + len("/api/"):].strip("/").split("/")
        s = self.state
        match req.method, parts:
            case "GET", ["datasources", "uid", uid]:
                if uid in s.datasources:
                    return 200, {"uid": uid, "name": uid}
                return 404, {"message": "Data source not found"}
            case "GET", ["folders", uid]:
                if uid in s.folders:
                    return 200, s.folders[uid]
                return 404, {"message": "folder not found", "status": "not-found"}
            case "POST", ["folders"]:
                uid = req.body["uid"]
                if uid in s.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                s.folders[uid] = {"id": s.new_id(), "uid": uid, "title": req.body["title"],
                                  "version": 1}
                return 200, s.folders[uid]
            case "PUT", ["folders", uid]:
                folder = s.folders.get(uid)
                if folder is None:
                    return 404, {"message": "folder not found"}
                if not req.body.get("overwrite") and req.body.get("version") != folder["version"]:
                    return 412, {"message": "the folder has been changed by someone else"}
                folder.update(title=req.body["title"], version=folder["version"] + 1)
                return 200, folder
            case "GET", ["dashboards", "uid", uid]:
                stored = s.dashboards.get(uid)
                if stored is None:
                    return 404, {"message": "Dashboard not found"}
                return 200, {"dashboard": copy.deepcopy(stored["dashboard"]),
                             "meta": {"folderUid": stored["folderUid"],
                                      "provisioned": stored.get("provisioned", False),
                                      "version": stored["dashboard"]["version"]}}
            case "POST", ["dashboards", "db"]:
                return self._save_dashboard(req.body)
            case "GET", ["search"]:
                hits = [{"uid": u, "title": d["dashboard"]["title"], "type": "dash-db",
                         "folderUid": d["folderUid"]} for u, d in sorted(s.dashboards.items())]
                hits += [{"uid": u, "title": f["title"], "type": "dash-folder"}
                         for u, f in sorted(s.folders.items())]
                wanted = req.query.get("type")
                return 200, [h for h in hits if not wanted or h["type"] in wanted]
            case "GET", ["playlists"]:
                return 200, [{"id": p["id"], "uid": p["uid"], "name": p["name"],
                              "interval": p["interval"]} for p in s.playlists.values()]
            case "GET", ["playlists", uid]:
                if uid not in s.playlists:
                    return 404, {"message": "Playlist not found"}
                return 200, s.playlists[uid]
            case "POST", ["playlists"]:
                n = s.new_id()
                uid = f"pl{n:04d}"  # Grafana chooses the uid; a uid in the body is ignored
                s.playlists[uid] = self._playlist(n, uid, req.body)
                return 200, {k: s.playlists[uid][k] for k in ("id", "uid", "name", "interval")}
            case "PUT", ["playlists", uid]:
                if uid not in s.playlists:
                    return 404, {"message": "Playlist not found"}
                s.playlists[uid] = self._playlist(s.playlists[uid]["id"], uid, req.body)
                return 200, {k: s.playlists[uid][k] for k in ("id", "uid", "name", "interval")}
        return 404, {"message": f"no route {req.method} {req.path}"}

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        s = self.state
        board = copy.deepcopy(body["dashboard"])
        uid = board.get("uid")
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in s.folders:
            return 400, {"message": "folder not found"}
        stored = s.dashboards.get(uid)
        if stored is not None:
            if stored.get("provisioned"):
                return 400, {"message": "Cannot save provisioned dashboard"}
            if not body.get("overwrite"):
                return 412, {"message": "The dashboard has been changed by someone else",
                             "status": "version-mismatch"}
            board["id"] = stored["dashboard"]["id"]
            board["version"] = stored["dashboard"]["version"] + 1
        else:
            board["id"] = s.new_id()
            board["version"] = 1
        s.dashboards[uid] = {"dashboard": board, "folderUid": folder_uid}
        return 200, {"id": board["id"], "uid": uid, "status": "success",
                     "version": board["version"], "url": f"/d/{uid}/x"}

    @staticmethod
    def _playlist(n: int, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": n, "uid": uid, "name": body["name"], "interval": body["interval"],
                "items": [{"id": i, "playlistUid": uid, "type": item["type"],
                           "value": item["value"], "order": i, "title": item.get("title", "")}
                          for i, item in enumerate(body.get("items") or [], start=1)]}
