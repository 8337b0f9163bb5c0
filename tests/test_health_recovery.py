"""The service answers 503 while the database is away and recovers by itself when it returns."""

from __future__ import annotations

import socket
import threading
import time

import psycopg
from conftest import assert_problem, make_client
from live import free_port


class TcpProxy:
    """A loopback TCP forwarder we can start after the app, standing in for a database restart."""

    def __init__(self, listen_port: int, target: tuple[str, int]) -> None:
        self.listen_port, self.target = listen_port, target
        self._server: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.listen_port), reuse_port=False)
        self._server.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._server:
            self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_health_is_503_while_down_and_recovers_without_restart(db_url):
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    port = free_port()
    proxied = db_url.replace(f":{info['port']}/", f":{port}/")
    proxy = TcpProxy(port, (info.get("host", "127.0.0.1"), int(info["port"])))
    with make_client(proxied, pool_timeout_s=1.0) as client:
        assert_problem(client.get("/health"), 503)
        assert_problem(client.get("/districts"), 503)
        proxy.start()  # the database "comes back"
        try:
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline:
                status = client.get("/health").status_code
                if status == 200:
                    break
                time.sleep(0.3)
            assert status == 200
            assert len(client.get("/districts").json()["features"]) == 11
        finally:
            proxy.stop()
