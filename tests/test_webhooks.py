"""Webhooks: a local receiver that is down, then failing, then up gets every event, in order, signed,
with the same id across retries; 410 disables; a slow receiver never slows the API."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg
import pytest
from conftest import assert_problem, bearer
from live import free_port, live_server
from standardwebhooks import Webhook

from gridrisk.services import webhook_delivery

INSIDE = (118.797, 32.060)  # 玄武, inside the small test city


class Receiver:
    """A webhook receiver on a loopback port: answers `status` (after `delay` s), records each POST."""

    def __init__(self, port: int) -> None:
        self.port, self.status, self.delay, self.fail_first = port, 200, 0.0, 0
        self.calls: list[tuple[dict, bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(receiver.delay)
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if receiver.fail_first > 0 else receiver.status
                receiver.fail_first -= 1
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def fast_retries(monkeypatch):
    """Retries within a second, not minutes (the schedule's shape is the same)."""
    monkeypatch.setattr(webhook_delivery, "BACKOFF_BASE_S", 0.1)
    monkeypatch.setattr(webhook_delivery, "BACKOFF_MAX_S", 0.5)
    monkeypatch.setattr(webhook_delivery, "POLL_S", 0.2)


def _source(code: str, dx: float = 0.0) -> dict:
    return {
        "code": code,
        "name": code,
        "category": "gas",
        "assessment": {"method": "LEC", "L": 3, "E": 6, "C": 7},
        "geometry": {"type": "Point", "coordinates": [INSIDE[0] + dx, INSIDE[1]]},
    }


def _log(api, hook: dict, admin: str, **params) -> list[dict]:
    return api.get(f"/webhooks/{hook['id']}/deliveries", params=params, headers=bearer(admin)).json()


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _register(api, admin: str, url: str, kinds=("feature_changed",)) -> dict:
    r = api.post(
        "/webhooks", json={"url": url, "kinds": list(kinds), "description": "测试"}, headers=bearer(admin)
    )
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("whsec_")
    return r.json()


def test_down_then_failing_then_up_delivers_everything_in_order(city_db_url, city_keys, fast_retries):
    receiver = Receiver(free_port())
    with live_server(city_db_url) as base, httpx.Client(base_url=base, timeout=10) as api:
        hook = _register(api, city_keys["admin"], receiver.url)
        for i in range(5):  # the receiver is not listening yet
            r = api.post(
                "/risk-sources", json=_source(f"WH-{i}", i * 0.001), headers=bearer(city_keys["operator"])
            )
            assert r.status_code == 201, r.text
        _wait(lambda: any(d["attempts"] >= 2 for d in _log(api, hook, city_keys["admin"])))
        receiver.fail_first = 3  # then it answers, badly at first
        receiver.start()
        try:
            _wait(lambda: all(d["status"] == "delivered" for d in _log(api, hook, city_keys["admin"])))
        finally:
            receiver.stop()
        log = _log(api, hook, city_keys["admin"])
    assert len(log) == 5 and {d["status"] for d in log} == {"delivered"}
    verifier = Webhook(hook["secret"])
    ids_in_order = []
    for headers, body in receiver.calls:
        payload = verifier.verify(body, headers)  # raises on a bad signature
        assert payload["type"] == "feature_changed"
        if not ids_in_order or ids_in_order[-1] != headers["webhook-id"]:
            ids_in_order.append(headers["webhook-id"])
    # Each event's id came again on its retries, and the events arrived in order, none overtaking.
    expected = [d["webhook_id"] for d in sorted(log, key=lambda d: d["event_id"])]
    assert ids_in_order == expected
    assert len(receiver.calls) >= 5 + 3


def test_410_disables_the_endpoint_until_it_is_enabled(city_db_url, city_keys, fast_retries):
    receiver = Receiver(free_port())
    receiver.status = 410
    receiver.start()
    try:
        with live_server(city_db_url) as base, httpx.Client(base_url=base, timeout=10) as api:
            admin = bearer(city_keys["admin"])
            hook = _register(api, city_keys["admin"], receiver.url)
            api.post("/risk-sources", json=_source("WH-G1"), headers=bearer(city_keys["operator"]))
            _wait(lambda: api.get(f"/webhooks/{hook['id']}", headers=admin).json()["enabled"] is False)
            body = api.get(f"/webhooks/{hook['id']}", headers=admin).json()
            assert "410" in body["disabled_reason"]
            api.post("/risk-sources", json=_source("WH-G2", 0.001), headers=bearer(city_keys["operator"]))
            time.sleep(1.0)
            assert len(receiver.calls) == 1  # disabled: events meanwhile are not queued for it
            assert len(_log(api, hook, city_keys["admin"])) == 1
            receiver.status = 200
            r = api.patch(f"/webhooks/{hook['id']}", json={"enabled": True}, headers=admin)
            assert r.status_code == 200 and r.json()["disabled_reason"] is None
            api.post("/risk-sources", json=_source("WH-G3", 0.002), headers=bearer(city_keys["operator"]))
            _wait(lambda: len(receiver.calls) == 2)
            gone = api.get(
                f"/webhooks/{hook['id']}/deliveries", params={"status": "disabled"}, headers=admin
            ).json()
            assert len(gone) == 1
            r = api.post(f"/webhooks/{hook['id']}/deliveries/{gone[0]['id']}/redeliver", headers=admin)
            assert r.status_code == 202
            _wait(
                lambda: (
                    len(receiver.calls) == 3 and receiver.calls[-1][0]["webhook-id"] == gone[0]["webhook_id"]
                )
            )
    finally:
        receiver.stop()


def test_a_slow_receiver_never_slows_the_api(city_db_url, city_keys, fast_retries):
    receiver = Receiver(free_port())
    receiver.delay = 3.0
    receiver.start()
    try:
        with live_server(city_db_url) as base, httpx.Client(base_url=base, timeout=10) as api:
            hook = _register(api, city_keys["admin"], receiver.url, kinds=("feature_changed", "cell_colour"))
            for i in range(3):
                api.post(
                    "/risk-sources",
                    json=_source(f"WH-S{i}", i * 0.001),
                    headers=bearer(city_keys["operator"]),
                )
            _wait(lambda: receiver.server is not None and len(receiver.calls) >= 0, 1)
            worst = 0.0
            for i in range(20):  # while the receiver sits on a delivery
                t = time.monotonic()
                r = api.post("/risk-sources", json=_source(f"WH-T{i}", 0.002 + i * 0.0001),
                             headers=bearer(city_keys["operator"]))  # fmt: skip
                assert r.status_code == 201
                assert api.get("/cells/at", params={"lon": INSIDE[0], "lat": INSIDE[1]}).status_code == 200
                worst = max(worst, time.monotonic() - t)
            assert worst < 1.0, worst
            pending = api.get(f"/webhooks/{hook['id']}/deliveries", params={"status": "pending"},
                              headers=bearer(city_keys["admin"])).json()  # fmt: skip
            assert pending  # the receiver is still behind: it slows only its own queue
    finally:
        receiver.stop()


def test_bad_webhook_input_is_4xx_and_writes_nothing(city_client, city_db_url, city_keys):
    admin = bearer(city_keys["admin"])
    for body, field in (
        ({"url": "ftp://x.example/hook", "kinds": ["warning"]}, "url"),
        ({"url": "http://x.example/hook", "kinds": ["nope"]}, "kinds"),
        ({"url": "http://x.example/hook", "kinds": []}, "kinds"),
        ({"url": "http://x.example/hook", "kinds": ["warning"], "extra": 1}, "extra"),
    ):
        problem = assert_problem(city_client.post("/webhooks", json=body, headers=admin), 422)
        assert any(field in str(e.get("field", "")) for e in problem["errors"]), problem
    assert_problem(city_client.post("/webhooks", json={"url": "http://x/h", "kinds": ["warning"]},
                                    headers=bearer(city_keys["operator"])), 403)  # fmt: skip
    assert_problem(city_client.get("/webhooks/999", headers=admin), 404)
    assert_problem(city_client.post("/webhooks/999/deliveries/1/redeliver", headers=admin), 404)
    with psycopg.connect(city_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM webhook_endpoints").fetchone()[0] == 0


def test_overdue_orders_and_full_shelters_are_announced(city_db_url, city_keys, fast_retries):
    """`shelter_status` comes with the check-in that takes the last place; `work_order_overdue` comes
    once per due time from the expiry job, and again only after a later due time passes too."""
    receiver = Receiver(free_port())
    receiver.start()
    operator = bearer(city_keys["operator"])
    try:
        with (
            live_server(city_db_url, expiry_interval_s=0.3) as base,
            httpx.Client(base_url=base, timeout=10) as api,
        ):
            hook = _register(
                api, city_keys["admin"], receiver.url, kinds=("work_order_overdue", "shelter_status")
            )
            shelter = {
                "code": "BN-WH-FULL",
                "name": "测试满员避难点",
                "class": "emergency",
                "geometry": {"type": "Point", "coordinates": [INSIDE[0] + 0.004, INSIDE[1]]},
                "capacity": 2,
                "status": "open",
            }
            r = api.post("/shelters", json=shelter, headers=operator)
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            r = api.post(f"/shelters/{sid}/occupancy", json={"delta": 2}, headers=operator)
            assert r.status_code == 200, r.text

            hazard = {
                "code": "WH-WL",
                "name": "测试积水点",
                "kind": "waterlogging",
                "level": "orange",
                "geometry": {"type": "Point", "coordinates": list(INSIDE)},
            }
            assert api.post("/hazard-points", json=hazard, headers=operator).status_code == 201
            now = time.time()
            w, s, e, n = INSIDE[0] - 0.002, INSIDE[1] - 0.002, INSIDE[0] + 0.002, INSIDE[1] + 0.002
            warning = {
                "identifier": "NJ-WH-OVERDUE",
                "sender": "南京市气象台",
                "hazard_type": "rainstorm",
                "level": "red",
                "valid_from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600)),
                "valid_until": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 6 * 3600)),
                "headline": "暴雨红色预警（测试）",
                "area": {
                    "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
                },
            }
            r = api.post("/warnings", json=warning, headers=operator)
            assert r.status_code == 201, r.text
            orders = api.get(f"/work-orders?warning={r.json()['id']}", headers=operator).json()["items"]
            (order,) = [o for o in orders if o["target"]["code"] == "WH-WL"]

            def kinds_received() -> list[tuple[str, dict]]:
                verifier = Webhook(hook["secret"])
                seen = {}
                for headers, body in receiver.calls:
                    payload = verifier.verify(body, headers)
                    seen[headers["webhook-id"]] = (payload["type"], payload["data"])
                return list(seen.values())

            _wait(lambda: any(k == "shelter_status" for k, _ in kinds_received()))
            (full,) = [d for k, d in kinds_received() if k == "shelter_status"]
            assert (full["id"], full["status"], full["old_status"], full["free"]) == (sid, "full", "open", 0)

            # Time passes: the order's due time is behind it.
            with psycopg.connect(city_db_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE work_orders SET due_at = now() - interval '1 minute' WHERE id = %s",
                    (order["id"],),
                )
            _wait(lambda: any(k == "work_order_overdue" for k, _ in kinds_received()))
            time.sleep(1.5)  # several more runs of the job: still announced once
            overdue = [d for k, d in kinds_received() if k == "work_order_overdue"]
            assert [d["id"] for d in overdue] == [order["id"]]
            assert overdue[0]["target"]["code"] == "WH-WL" and overdue[0]["status"] == "open"
            assert overdue[0]["action"] == order["action"]

            # A later due time re-arms it; once that passes too, it is announced again.
            with psycopg.connect(city_db_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE work_orders SET due_at = now() + interval '1 hour' WHERE id = %s", (order["id"],)
                )
                _wait(
                    lambda: conn.execute(
                        "SELECT overdue_notified_at IS NULL FROM work_orders WHERE id = %s", (order["id"],)
                    ).fetchone()[0]
                )
                conn.execute(
                    "UPDATE work_orders SET due_at = now() - interval '1 second' WHERE id = %s",
                    (order["id"],),
                )
            _wait(lambda: sum(k == "work_order_overdue" for k, _ in kinds_received()) == 2)
    finally:
        receiver.stop()


def test_delete_answers_204_without_a_body(city_client, city_keys):
    """A 204 carries nothing (it sent `null`, which uvicorn cut off as a broken response)."""
    admin = city_keys["admin"]
    hook = _register(city_client, admin, "http://127.0.0.1:9/hook")
    r = city_client.delete(f"/webhooks/{hook['id']}", headers=bearer(admin))
    assert r.status_code == 204 and r.content == b"" and "content-length" not in r.headers
    assert city_client.get(f"/webhooks/{hook['id']}", headers=bearer(admin)).status_code == 404
    assert city_client.delete(f"/webhooks/{hook['id']}", headers=bearer(admin)).status_code == 404
