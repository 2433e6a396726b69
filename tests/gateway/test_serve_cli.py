"""`byok-ledger serve` as a command: refusals that exit 2, graceful shutdown (a request in
flight when SIGTERM arrives still finishes and is logged), and --workers N with Redis state
(every worker writes its own log file); the server's coalesced writes."""

from __future__ import annotations

import secrets
import signal
import subprocess
import threading
import time

import httpx
import redis
from gatewaykit import PY, ROOT, SECRETS, Server, records, write_config

from simulator.fake_providers import start_fleet


def serve_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "byok_ledger.cli", "serve", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refusals_exit_2_with_a_plain_message(tmp_path):
    path, _ = write_config(tmp_path, {})
    r = serve_cmd("--config", str(path), "--workers", "3")
    assert r.returncode == 2 and "router.state" in r.stderr and "Traceback" not in r.stderr
    r = serve_cmd("--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "not found" in r.stderr
    bad = tmp_path / "bad" / "ledger.yaml"
    bad.parent.mkdir()
    bad.write_text(path.read_text() + "\nrouter: {state: 'redis://:hunter2@h:6379/0'}\n")
    r = serve_cmd("--config", str(bad))
    assert r.returncode == 2 and "BYOK_LEDGER_STATE_PASSWORD" in r.stderr
    assert "hunter2" not in r.stderr
    r = serve_cmd("--config", str(path), "--workers", "0")
    assert r.returncode == 2 and "--workers" in r.stderr
    down = tmp_path / "down" / "ledger.yaml"
    down.parent.mkdir()
    down.write_text(path.read_text() + "\nrouter: {state: 'redis://127.0.0.1:1/0'}\n")
    r = serve_cmd("--config", str(down))
    assert r.returncode == 2 and "cannot reach Redis" in r.stderr
    assert "Traceback" not in r.stderr


def test_sigterm_lets_the_request_in_flight_finish(tmp_path):
    _, cfg = write_config(tmp_path, {})
    with start_fleet(cfg) as fleet:
        path, _ = write_config(tmp_path, fleet.base_urls)
        server = Server(path, fleet.secrets)
        fleet["p1"].add_fault("stream_stall", after=2, delay_s=1.0)  # under the 2 s timeout
        lines: list[str] = []

        def client() -> None:
            with httpx.stream(
                "POST",
                server.url + "/v1/chat/completions",
                json={
                    "model": "m/b",
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": True,
                },
                headers={"authorization": "Bearer " + SECRETS["app"]},
                timeout=10,
            ) as r:
                lines.extend(r.iter_lines())

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.5)  # the stream is stalled upstream now
        server.proc.send_signal(signal.SIGTERM)
        t.join(timeout=15)
        code = server.stop()
        assert "data: [DONE]" in lines  # finished, not cut
        assert code in (0, -signal.SIGTERM)
        recs = records(tmp_path / "logs")
        assert [r["status"] for r in recs] == ["ok"] and recs[0]["stream"] is True


def test_workers_share_redis_and_write_their_own_files(tmp_path):
    prefix = "test-gw-workers-" + secrets.token_hex(6)
    router = {"state": "redis://127.0.0.1:6379/0", "state_prefix": prefix}
    _, cfg = write_config(tmp_path, {}, router=router)
    try:
        with start_fleet(cfg) as fleet:
            path, _ = write_config(tmp_path, fleet.base_urls, router=router)
            server = Server(path, fleet.secrets, workers=2)
            try:
                with httpx.Client(timeout=10) as c:
                    # new connections spread over both workers (which one accepts is the
                    # kernel's choice: keep sending until both have written)
                    sent = 0
                    logs = tmp_path / "logs" / "requests"
                    while sent < 40 or (len(list(logs.rglob("*.jsonl"))) < 2 and sent < 400):
                        r = c.post(
                            server.url + "/v1/chat/completions",
                            json={"model": "m/b", "messages": [{"role": "user", "content": "x"}]},
                            headers={
                                "authorization": "Bearer " + SECRETS["app"],
                                "connection": "close",
                            },
                        )
                        assert r.status_code == 200
                        sent += 1
                    # whichever worker answers, /metrics sums both workers' counters
                    for _ in range(4):
                        text = c.get(server.url + "/metrics", headers={"connection": "close"}).text
                        line = next(
                            x
                            for x in text.splitlines()
                            if x.startswith("byok_gateway_requests_total{")
                            and 'endpoint="/v1/chat/completions"' in x
                            and 'status="200"' in x
                        )
                        assert float(line.rsplit(" ", 1)[1]) == sent, line
                    assert (
                        'byok_gateway_budget_headroom_usd{scope="api_key",scope_id="pool"}' in text
                    )
            finally:
                server.stop()
        files = list((tmp_path / "logs" / "requests").rglob("*.jsonl"))
        assert len(files) == 2 and all(f.name.startswith("gateway-") for f in files)
        assert len(records(tmp_path / "logs")) == sent
    finally:
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for k in r.scan_iter(prefix + ":*"):
            r.delete(k)


def test_per_key_concurrency_bound_answers_429_and_logs_it(tmp_path):
    router = {"max_concurrent_per_key": 1}
    _, cfg = write_config(tmp_path, {}, router=router)
    with start_fleet(cfg) as fleet:
        path, _ = write_config(tmp_path, fleet.base_urls, router=router)
        server = Server(path, fleet.secrets)
        try:
            fleet["p1"].add_fault("stream_stall", after=2, delay_s=1.5)
            h = {"authorization": "Bearer " + SECRETS["app"]}
            body = {"model": "m/b", "messages": [{"role": "user", "content": "x"}]}
            done: list[int] = []

            def slow() -> None:
                with httpx.stream(
                    "POST",
                    server.url + "/v1/chat/completions",
                    json={**body, "stream": True},
                    headers=h,
                    timeout=10,
                ) as r:
                    r.read()
                    done.append(r.status_code)

            t = threading.Thread(target=slow)
            t.start()
            time.sleep(0.5)
            r = httpx.post(server.url + "/v1/chat/completions", json=body, headers=h)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            err = r.json()["error"]
            assert "max_concurrent_per_key" in err["message"]
            other = httpx.post(  # another key is not held back by this one
                server.url + "/v1/chat/completions",
                json=body,
                headers={"authorization": "Bearer " + SECRETS["guard"]},
            )
            assert other.status_code == 200
            t.join(timeout=10)
            assert done == [200]
            again = httpx.post(server.url + "/v1/chat/completions", json=body, headers=h)
            assert again.status_code == 200  # the slot came back when the stream ended
            recs = {x["request_id"]: x for x in records(tmp_path / "logs")}
            assert recs[err["metadata"]["request_id"]]["error_code"] == 429
        finally:
            server.stop()


def test_writes_in_one_loop_iteration_leave_as_one():
    """The server's transport wrapper (gateway.protocol): uvicorn's separate writes of a
    response's head and body leave as one write at the end of the loop iteration, in
    order; close() sends what is pending first; a closed transport gets nothing."""
    import asyncio

    from gateway.protocol import CoalescedWrites

    class Recorder:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

        def get_extra_info(self, name: str) -> str:
            return "info:" + name

    async def main() -> None:
        real = Recorder()
        t = CoalescedWrites(real)  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert real.writes == []
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"a")
        t.write(b"b")
        t.close()
        assert real.writes[-1] == b"ab" and real.closed
        t.write(b"late")
        await asyncio.sleep(0)
        assert real.writes[-1] == b"ab"  # nothing written to a closed transport
        assert t.get_extra_info("peername") == "info:peername"

    asyncio.run(main())


def test_a_serving_process_freezes_what_start_up_built(tmp_path):
    """`app_from_env` (what serve's workers run) tunes the collector once the router is
    built; an app made with create_app in someone else's process leaves it alone."""
    cfg, _ = write_config(tmp_path, {})
    code = (
        "import asyncio, gc, os, sys\n"
        "from gateway.app import CONFIG_ENV, app_from_env, create_app\n"
        "os.environ[CONFIG_ENV] = sys.argv[1]\n"
        "async def main():\n"
        "    before = gc.get_threshold()[0]\n"
        "    lib = create_app(sys.argv[1]).gateway\n"
        "    await lib.start(); await lib.stop()\n"
        "    print(gc.get_freeze_count() == 0, gc.get_threshold()[0] == before)\n"
        "    gw = app_from_env().gateway\n"
        "    await gw.start(); await gw.stop()\n"
        "    print(gc.get_freeze_count() > 1000, gc.get_threshold()[0])\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [PY, "-c", code, str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True", "10000"]
