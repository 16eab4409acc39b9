"""Taking ClickHouse away from the running platform at a real network boundary.

:class:`ClickHouseOverHttp` serves a test's embedded store over ClickHouse's HTTP protocol from
a process of its own (``chdb_http_server.py``); the platform's sink writes to it through a
:class:`TcpProxy` (``IOC_CLICKHOUSE_URL=http://127.0.0.1:<proxy port>``). Stopping the proxy is
the outage: new connections are refused and open ones are cut, as when a ClickHouse server
goes down or the network between goes away; starting it again ends the outage.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers import find_free_ports

SERVER_SCRIPT = Path(__file__).with_name("chdb_http_server.py")


class ClickHouseOverHttp:
    """The stand-in ClickHouse server for ``store`` (an embedded store directory), on ``port``.
    While it runs, no other process can open the store: stop it before querying ``chdb://``."""

    def __init__(self, store: Path, log: Path) -> None:
        self.store, self.log = store, log
        self.port = find_free_ports(1)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), str(self.store),
                                          str(self.port)], stdout=subprocess.DEVNULL,
                                         stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the ClickHouse stand-in did not start:\n"
                                         + self.log.read_text(errors="replace")[-3000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target``. ``stop()`` closes the listening
    socket (connections are refused) and resets every open connection; ``start()`` listens
    again on the same port. ``connections`` counts the connections it forwarded."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = find_free_ports(1)
        self.connections = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR
        listener.settimeout(0.2)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        assert self._thread is not None
        self._thread.join(5)
        listener.close()
        with self._lock:
            socks, self._open = list(self._open), set()
        for sock in socks:
            # shutdown wakes the pump blocked in recv() (close alone would not: the kernel
            # keeps the socket open while a call uses it); with linger 0 the close resets
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()  # each socket is the source of one pump
            with self._lock:
                self._open.discard(src)
