"""Gateway benchmark (`byok-ledger serve`), side by side in one run:

1. Added latency, sequential non-streaming requests over one keep-alive httpx.Client:
   direct   POST <fake>/chat/completions              (the upstream, no gateway)
   gateway  POST <serve>/v1/chat/completions           (auth, plan, budget hold, record)
   litellm  POST <litellm proxy>/v1/chat/completions   (LiteLLM's proxy, its own venv)
   (and `gateway_before` with --before DIR: the gateway from another source tree)
   in alternating batches so drift hits every side alike; added = p50(side) - p50(direct),
   plus each process's CPU per request. Targets: gateway <= 0.5 ms p50 added, and >= 10x
   less added than LiteLLM.
2. The upstream call alone, in this process: httpx's default transport (httpcore) against
   gateway/transport.py, with and without httpx's cookie jar: CPU and p50 per request.
3. Streaming: 256 concurrent clients (2 load-generator processes on raw sockets, so the
   measuring side is not the bottleneck), each sending 4 streams one after another, their
   starts spread over one stream's length; an asyncio fake upstream streams 32 content
   chunks 30 ms apart, each carrying its send time (CLOCK_MONOTONIC, system-wide). Per
   side: time to the first content chunk, whole-stream time, every chunk's delivery delay
   (arrival minus send), the tail (last content chunk to the end of the body: the usage
   chunk and [DONE]), the fake's own span (its send times of the first and the last content
   chunk) and the stream's overhead (whole time minus that span); added = the gateway's
   percentile minus the direct one (a difference of percentiles: streams cannot be
   paired), in passes direct, gateway, gateway, direct. The whole-stream time also moves
   with the fake's timers (32 sleeps that overshoot more when its core is busier), which
   the span shows and the overhead leaves out: the gateway's own share of a stream is the
   first-chunk time, the chunk delays and the overhead. Errors are counted by exception
   type. Targets: p99 added <= 10 ms, 0 errors; reported: streams and chunks per gateway
   CPU-second (one worker = the requests per second one core sustains).

   Where the processes run: the measuring side (fake, load generators, this process) is
   busy at the same moments as the gateway, since every chunk passes through all three.
   Left to the scheduler on 2 cores, the gateway pass then also measures the gateway
   queueing behind its own load generators for a core, which the direct pass (no gateway)
   never does. So by default (2+ cores, one worker) the streaming passes give the gateway
   one core of its own and put the whole measuring side on the others, the same in the
   direct passes as in the gateway ones: what the gateway adds is then its own work and
   queueing, as with clients and providers on other machines. Other jobs on the machine
   still land on either core: `loadavg_*` says how busy it was, and a run under load
   measures that load. `--no-pin` leaves placement to the scheduler (the method before
   2026-12-04; reported as `"pinned": false`). The sequential part is never pinned.

The fakes run in their own processes, the gateway in another (one uvicorn worker), LiteLLM
in a third; the sequential client is this process.

    .venv/bin/python bench/bench_gateway.py [--n 2000] [--litellm /tmp/litellm-venv]
        [--before DIR] [--stream-clients 256] [--stream-rounds 4] [--profile FILE] [--json]

LiteLLM is never our dependency: install it in its own virtualenv
(`python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'`)
and pass that folder; without it that column is skipped. For a before/after, unpack an
older revision (`git archive <rev> | tar -x -C /tmp/old`) and pass `--before /tmp/old`.
`--profile FILE` writes the gateway's cProfile stats (pstats) when it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GW_KEY = "sk-bench-gateway-key"
LITELLM_KEY = "sk-" + hashlib.sha256(b"bench-litellm-master").hexdigest()  # both sides auth
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Summarise the quarterly numbers in two sentences."},
]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early (code {proc.returncode})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready after {timeout_s:.0f} s")


PROFILED = """
import atexit, cProfile, signal, sys
# uvicorn re-raises SIGTERM after its graceful shutdown: exit normally so atexit runs
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
prof = cProfile.Profile()
atexit.register(lambda: (prof.disable(), prof.dump_stats(sys.argv[1])))
prof.enable()
from byok_ledger.cli import main
sys.exit(main(sys.argv[2:]))
"""


def sse_fake(port: int, chunks: int, interval_ms: float) -> None:
    """An asyncio (uvloop) OpenAI-wire streaming provider for the concurrent-streams test:
    the simulator's fake is a thread per connection and saturates first, which would measure
    the fake instead of the gateway. Each content chunk's text is the fake's CLOCK_MONOTONIC
    in nanoseconds at the moment it is written (system-wide, so comparable in the load
    processes): a client that reads it knows how long that chunk took to reach it, direct
    or through the gateway. Chunks `interval_ms` apart, then finish, a usage chunk and
    `[DONE]`, chunked transfer encoding, keep-alive."""
    import uvloop

    def chunk(obj: dict) -> bytes:
        data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
        return b"%x\r\n%s\r\n" % (len(data), data)

    base = {"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 0, "model": "s-1"}
    first = chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    prefix = json.dumps({**base, "choices": [{"index": 0, "delta": {"content": "@"}}]})
    pre, post = (x.encode() for x in prefix.replace(" ", "").split("@"))
    tail = chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 20, "completion_tokens": chunks, "total_tokens": 20 + chunks}
    tail += chunk({**base, "choices": [], "usage": usage})
    done = b"data: [DONE]\n\n"
    tail += b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)  # last event, end of body
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    gap = interval_ms / 1000

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                hdr = await reader.readuntil(b"\r\n\r\n")
                n = 0
                for line in hdr.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                await reader.readexactly(n)
                writer.write(head + first)
                for _ in range(chunks):
                    await asyncio.sleep(gap)
                    data = b"data: %s%d%s\n\n" % (pre, time.monotonic_ns(), post)
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                writer.write(tail)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


# What each streamed request measures (ms): time to the first content chunk, the whole
# stream, each content chunk's delay, the tail after the last content chunk, the fake's
# own span from the first to the last content chunk it sent, and total minus span.
SERIES = ("ttfb", "total", "delay", "tail", "span", "overhead")


def stream_load(spec: dict[str, Any]) -> None:
    """One load-generator process (uvloop, raw sockets: no HTTP client library on the
    measuring side, so the client is not what saturates): `clients` keep-alive connections,
    each sending `rounds` streamed requests one after another, their starts spread over
    `ramp_s` so the streams overlap as steady traffic rather than one burst. Per stream:
    time to the first content chunk, total time, and each content chunk's delivery delay
    (arrival minus the fake's send timestamp). Writes one JSON object to `spec["out"]`.
    With `spec["cpus"]` it runs on those CPUs only (the measuring side's cores)."""
    import re

    import uvloop

    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])

    host, port = spec["host"], spec["port"]
    body = json.dumps(spec["body"]).encode()
    head = f"POST {spec['path']} HTTP/1.1\r\nhost: {host}:{port}\r\n"
    for k, v in spec["headers"].items():
        head += f"{k}: {v}\r\n"
    head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    request = head.encode() + body
    stamp = re.compile(rb'"content":"(\d{6,})"')
    ttfb: list[float] = []
    total: list[float] = []
    delay: list[float] = []
    tail: list[float] = []
    span: list[float] = []
    overhead: list[float] = []
    errors: dict[str, int] = {}

    def failed(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def one_client(i: int) -> None:
        await asyncio.sleep(spec["ramp_s"] * i / max(1, spec["clients"]))
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            failed(f"connect {type(e).__name__}: {e}"[:160])
            return
        try:
            for _ in range(spec["rounds"]):
                t0 = time.monotonic_ns()
                writer.write(request)
                status = await reader.readuntil(b"\r\n\r\n")
                if not status.startswith(b"HTTP/1.1 200"):
                    failed(f"http {status[:40]!r}")
                    return
                first = None
                last = first_sent = last_sent = 0
                buf = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                    data = await reader.readexactly(size + 2)
                    now = time.monotonic_ns()
                    if size == 0:
                        break
                    buf += data[:-2]
                    for m in stamp.finditer(data):
                        sent = int(m.group(1))
                        delay.append((now - sent) / 1e6)
                        last, last_sent = now, sent
                        if first is None:
                            first, first_sent = now, sent
                if b"data: [DONE]" not in buf or first is None:
                    last = buf.rstrip().rsplit(b"\n", 1)[-1]
                    failed(f"no [DONE]; last event {last[:160]!r}")
                    return
                end = time.monotonic_ns()
                ttfb.append((first - t0) / 1e6)
                total.append((end - t0) / 1e6)
                tail.append((end - last) / 1e6)
                span.append((last_sent - first_sent) / 1e6)
                # the stream's time beyond the fake's own schedule (its timers drift
                # with the load on the measuring core, the same for either side)
                overhead.append(total[-1] - span[-1])
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            failed(f"{type(e).__name__}: {e}"[:160])
        finally:
            writer.close()

    async def main() -> float:
        t = time.monotonic()
        tasks = [asyncio.create_task(one_client(i)) for i in range(spec["clients"])]
        _, late = await asyncio.wait(tasks, timeout=spec["timeout_s"])
        for task in late:  # bounded in time: a stuck stream is an error, not a hang
            task.cancel()
            failed(f"not finished within {spec['timeout_s']} s")
        return time.monotonic() - t

    wall = uvloop.run(main())
    # a file, not stdout: the results outgrow a pipe's buffer while the parent still
    # waits for another load process
    Path(spec["out"]).write_text(
        json.dumps(
            {
                "ttfb": ttfb,
                "total": total,
                "delay": delay,
                "tail": tail,
                "span": span,
                "overhead": overhead,
                "errors": errors,
                "wall": wall,
            }
        )
    )


def config(folder: Path) -> Path:
    data = {
        "paths": {"logs": "logs", "invoices": "invoices", "duckdb": "l.duckdb", "reports": "r"},
        "providers": [
            {
                "id": "p1",
                "api": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "invoice_format": "openai_costs",
            },
            {
                "id": "ps",
                "api": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "invoice_format": "openai_costs",
            },
        ],
        "models": [
            {
                "id": "m/b",
                "endpoints": [
                    {
                        "provider": "p1",
                        "upstream_model": "b-1",
                        "price": {"input": "0.5", "output": "1"},
                    }
                ],
            },
            {
                "id": "m/s",
                "endpoints": [
                    {
                        "provider": "ps",
                        "upstream_model": "s-1",
                        "price": {"input": "0.5", "output": "1"},
                    }
                ],
            },
        ],
        "byok_keys": [
            {"id": "k1", "provider": "p1", "secret_env": "BENCH_K1", "order": 1},
            {"id": "ks", "provider": "ps", "secret_env": "BENCH_KS", "order": 1},
        ],
        "api_keys": [
            {
                "id": "bench",
                "secret_sha256": hashlib.sha256(GW_KEY.encode()).hexdigest(),
                "environment": "prod",
                "app": "bench",
            }
        ],
        "router": {"max_concurrent_per_key": 4096},
    }
    p = folder / "ledger.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str] | None = None, **kw: Any):
        kw.setdefault("cwd", ROOT)
        p = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            **kw,
        )
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()


def cpu_s(pid: int, which: tuple[int, ...] = (11, 12, 13, 14)) -> float:
    """User + system CPU seconds a process, its live child processes (uvicorn's workers)
    and its reaped children used so far (`which=SYS` for the system part only)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[i]) for i in which) / ticks
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            pids += [int(k) for k in kids]
    return total


SYS = (12, 14)


def pin(pid: int, cpus: set[int]) -> None:
    """Run a process, every thread of it and its child processes (uvicorn's workers) on
    `cpus` only."""
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cpus)
            todo += [int(k) for k in Path(f"/proc/{p}/task/{p}/children").read_text().split()]


def sequential(targets: dict[str, tuple[str, dict, dict]], n: int, batch: int, warmup: int):
    clients = {k: httpx.Client(timeout=30.0) for k in targets}
    lat: dict[str, list[float]] = {k: [] for k in targets}
    errors = dict.fromkeys(targets, 0)
    try:
        for name, (url, body, headers) in targets.items():
            for _ in range(warmup):
                clients[name].post(url, json=body, headers=headers).json()
        done = 0
        while done < n:
            for name, (url, body, headers) in targets.items():
                c = clients[name]
                for _ in range(batch):
                    t = time.perf_counter()
                    r = c.post(url, json=body, headers=headers)
                    r.json()
                    lat[name].append(time.perf_counter() - t)
                    if r.status_code != 200:
                        errors[name] += 1
            done += batch
    finally:
        for c in clients.values():
            c.close()
    return lat, errors


def stream_side(
    host: str, port: int, path: str, body: dict, headers: dict, args: argparse.Namespace
) -> dict[str, Any]:
    """`args.stream_clients` concurrent streaming clients split over `args.stream_procs`
    load-generator processes (each `stream_load`); their measurements merged."""
    n_procs = max(1, min(args.stream_procs, args.stream_clients))
    per = [
        args.stream_clients // n_procs + (i < args.stream_clients % n_procs) for i in range(n_procs)
    ]
    timeout_s = 60.0
    loaders = []
    outs: list[Path] = []
    for i, clients in enumerate(per):
        outs.append(Path(args.work) / f"stream-load-{i}.json")
        spec = {
            "host": host,
            "port": port,
            "path": path,
            "body": body,
            "headers": headers,
            "clients": clients,
            "rounds": args.stream_rounds,
            "ramp_s": args.stream_chunks * args.chunk_ms / 1000,
            "timeout_s": timeout_s,
            "out": str(outs[-1]),
            "cpus": args.apparatus_cpus,
        }
        loaders.append(
            subprocess.Popen([PY, str(Path(__file__).resolve()), "--stream-load", json.dumps(spec)])
        )
    merged: dict[str, Any] = {"errors": {}, "wall": 0.0, **{k: [] for k in SERIES}}
    for p, out in zip(loaders, outs, strict=True):
        if p.wait(timeout=timeout_s + 30) != 0:
            raise SystemExit(f"a stream load process failed (exit {p.returncode})")
        got = json.loads(out.read_text())
        out.unlink()
        for k in SERIES:
            merged[k] += got[k]
        for k, v in got["errors"].items():
            merged["errors"][k] = merged["errors"].get(k, 0) + v
        merged["wall"] = max(merged["wall"], got["wall"])
    return merged


def summary(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "streams": len(m["total"]),
        "errors": sum(m["errors"].values()),
        "error_kinds": m["errors"],
        "wall_s": round(m["wall"], 3),
        "streams_per_s": round(len(m["total"]) / m["wall"], 1) if m["wall"] else None,
    }
    for k in SERIES:
        if m[k]:
            out[f"{k}_p50_ms"] = round(statistics.median(m[k]), 3)
            out[f"{k}_p99_ms"] = round(pct(m[k], 99), 3)
    return out


def transports(url: str, body: dict, headers: dict, n: int, batch: int, conc: int):
    """The upstream call alone, in this process on uvloop (what the gateway runs): httpx's
    default transport (httpcore) against gateway/transport.py, each with and without
    httpx's cookie jar, in alternating batches; CPU (this process) and p50 latency per
    request, sequential and with `conc` requests in flight."""
    import uvloop

    from gateway.transport import FastTransport, UpstreamClient

    def variants() -> dict[str, httpx.AsyncClient]:
        lim = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        return {
            "httpx_default": httpx.AsyncClient(limits=lim, timeout=30.0),
            "httpx_default_no_cookies": UpstreamClient(limits=lim, timeout=30.0),
            "fast_with_cookies": httpx.AsyncClient(transport=FastTransport(), timeout=30.0),
            "fast_no_cookies": UpstreamClient(transport=FastTransport(), timeout=30.0),
        }

    u = httpx.URL(url)

    async def run() -> dict[str, Any]:
        clients = variants()
        lat: dict[str, list[float]] = {k: [] for k in clients}
        cpu: dict[str, float] = dict.fromkeys(clients, 0.0)
        ccpu: dict[str, float] = dict.fromkeys(clients, 0.0)
        cn: dict[str, int] = dict.fromkeys(clients, 0)

        async def one(c: httpx.AsyncClient) -> None:
            r = await c.post(u, json=body, headers=headers)
            r.json()
            if r.status_code != 200:
                raise SystemExit(f"transport bench: HTTP {r.status_code}")

        for c in clients.values():  # warm the pools
            await asyncio.gather(*(one(c) for _ in range(conc)))
        done = 0
        while done < n:
            for name, c in clients.items():
                t0 = time.process_time()
                for _ in range(batch):
                    t = time.perf_counter()
                    await one(c)
                    lat[name].append(time.perf_counter() - t)
                cpu[name] += time.process_time() - t0
                t0 = time.process_time()
                await asyncio.gather(*(one(c) for _ in range(batch)))
                ccpu[name] += time.process_time() - t0
                cn[name] += batch
            done += batch
        for c in clients.values():
            await c.aclose()
        return {
            "requests_per_variant": done,
            "concurrent_in_flight": batch,
            "p50_ms": {k: round(statistics.median(v) * 1000, 4) for k, v in lat.items()},
            "cpu_us_per_request": {k: round(v * 1e6 / done, 1) for k, v in cpu.items()},
            "cpu_us_per_request_concurrent": {
                k: round(v * 1e6 / cn[k], 1) for k, v in ccpu.items()
            },
        }

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="sequential requests per side")
    ap.add_argument("--batch", type=int, default=100, help="requests per alternating batch")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument(
        "--litellm",
        default="/tmp/litellm-venv",
        help="virtualenv with litellm[proxy] installed ('' to skip LiteLLM)",
    )
    ap.add_argument(
        "--transport-n",
        type=int,
        default=2000,
        help="requests per upstream transport variant (0 to skip that comparison)",
    )
    ap.add_argument("--stream-clients", type=int, default=256)
    ap.add_argument("--stream-rounds", type=int, default=4, help="streams per client")
    ap.add_argument(
        "--stream-procs", type=int, default=2, help="load-generator processes for the streams"
    )
    ap.add_argument("--stream-chunks", type=int, default=32, help="content chunks per stream")
    ap.add_argument("--chunk-ms", type=float, default=30.0, help="gap between content chunks")
    ap.add_argument(
        "--before",
        metavar="DIR",
        help="also run the gateway from this source tree (e.g. an older revision unpacked "
        "with git archive) in the sequential comparison",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gateway worker processes (above 1 the budgets live in Redis, --redis)",
    )
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="streaming part: do not give the gateway a core of its own (see the docstring)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="run the gateway under cProfile and write its stats to FILE (pstats) at exit",
    )
    ap.add_argument("--sse-fake", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--stream-load", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sse_fake:
        sse_fake(args.sse_fake, args.stream_chunks, args.chunk_ms)
        return 0
    if args.stream_load:
        stream_load(json.loads(args.stream_load))
        return 0

    procs = Procs()
    state_prefix: str | None = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-gw-")
    folder = Path(tmp.name)
    out: dict[str, Any] = {
        "cores": os.cpu_count(),
        "gateway_workers": args.workers,
        "loadavg_before": os.getloadavg()[0],
    }
    try:
        args.work = str(folder)
        cores = sorted(os.sched_getaffinity(0))
        gw_cpus: set[int] | None = None
        args.apparatus_cpus = None
        if args.pin and len(cores) >= 2 and args.workers == 1:
            gw_cpus, args.apparatus_cpus = {cores[-1]}, cores[:-1]
        cfg = config(folder)
        # The fake's listening backlog is raised from the stdlib's 5 so 256 concurrent
        # clients are not turned into SYN retransmits (which would measure the kernel).
        fake = procs.start(
            [
                PY,
                "-c",
                "import http.server, sys; "
                "http.server.ThreadingHTTPServer.request_queue_size = 1024; "
                "from simulator.fake_providers import main; sys.exit(main(sys.argv[1:]))",
                str(cfg),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert fake.stdout is not None
        info = json.loads(fake.stdout.readline())
        fake_url = info["base_urls"]["p1"]
        secret = info["secrets"]["BENCH_K1"]
        sse_port = free_port()
        sse = procs.start(
            [PY, str(Path(__file__).resolve()), "--sse-fake", str(sse_port)]
            + ["--stream-chunks", str(args.stream_chunks), "--chunk-ms", str(args.chunk_ms)]
        )
        sse_url = f"http://127.0.0.1:{sse_port}/v1"
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", sse_port)):
                break
            if time.monotonic() > deadline or sse.poll() is not None:
                raise SystemExit("the streaming fake did not start")
            time.sleep(0.1)
        data = yaml.safe_load(cfg.read_text())
        data["providers"][0]["base_url"] = fake_url
        data["providers"][1]["base_url"] = sse_url
        if args.workers > 1:  # several workers share budgets through Redis only
            data["router"]["state"] = args.redis
            state_prefix = data["router"]["state_prefix"] = (
                f"bench-gw-{os.getpid()}-{time.time_ns()}"
            )
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))

        gw_port = free_port()
        serve = ["serve", "--config", str(cfg), "--port", str(gw_port)]
        serve += ["--workers", str(args.workers)]
        if args.profile:  # stats written when the gateway exits (SIGTERM at the end)
            run = [PY, "-c", PROFILED, args.profile, *serve]
        else:
            run = [PY, "-m", "byok_ledger.cli", *serve]
        gw = procs.start(
            run,
            env={"BENCH_K1": secret, "BENCH_KS": "sk-fast"},
        )
        gw_url = f"http://127.0.0.1:{gw_port}"
        wait_http(gw_url + "/readyz", gw, 60, "byok-ledger serve")
        before = None
        if args.before:
            # the same gateway from another source tree (e.g. `git archive <rev>`): before
            # and after measured side by side, same fake, same requests, same load
            b_port = free_port()
            tree = str(Path(args.before).resolve())
            before = procs.start(
                [PY, "-m", "byok_ledger.cli", "serve", "--config", str(cfg)]
                + ["--port", str(b_port)],
                env={"BENCH_K1": secret, "BENCH_KS": "sk-fast", "PYTHONPATH": tree},
                cwd=tree,
            )
            wait_http(f"http://127.0.0.1:{b_port}/readyz", before, 60, "gateway (before)")

        body = {"messages": MESSAGES, "max_tokens": 64}
        targets: dict[str, tuple[str, dict, dict]] = {
            "direct": (
                fake_url + "/chat/completions",
                {**body, "model": "b-1"},
                {"authorization": "Bearer " + secret},
            ),
            "gateway": (
                gw_url + "/v1/chat/completions",
                {**body, "model": "m/b"},
                {"authorization": "Bearer " + GW_KEY},
            ),
        }
        if before is not None:
            targets["gateway_before"] = (
                f"http://127.0.0.1:{b_port}/v1/chat/completions",
                {**body, "model": "m/b"},
                {"authorization": "Bearer " + GW_KEY},
            )
        ll_bin = Path(args.litellm) / "bin" / "litellm" if args.litellm else None
        if ll_bin is not None and ll_bin.exists():
            ll_cfg = folder / "litellm.yaml"
            ll_cfg.write_text(
                yaml.safe_dump(
                    {
                        "model_list": [
                            {
                                "model_name": "m/b",
                                "litellm_params": {
                                    "model": "openai/b-1",
                                    "api_base": fake_url,
                                    "api_key": secret,
                                },
                            }
                        ],
                        "litellm_settings": {"drop_params": True, "telemetry": False},
                    }
                )
            )
            ll_port = free_port()
            ll = procs.start(
                [
                    str(ll_bin),
                    "--config",
                    str(ll_cfg),
                    "--port",
                    str(ll_port),
                    "--host",
                    "127.0.0.1",
                ],
                env={
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                    "LITELLM_LOG": "ERROR",
                    "LITELLM_MASTER_KEY": LITELLM_KEY,
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ll_url = f"http://127.0.0.1:{ll_port}"
            wait_http(ll_url + "/health/liveliness", ll, 180, "litellm proxy")
            targets["litellm"] = (
                ll_url + "/v1/chat/completions",
                {**body, "model": "m/b"},
                {"authorization": "Bearer " + LITELLM_KEY},
            )
        else:
            out["litellm"] = "skipped (no litellm virtualenv given)"

        pids = {"gateway": gw.pid, "fake": fake.pid}
        if before is not None:
            pids["gateway_before"] = before.pid
        if "litellm" in targets:
            pids["litellm"] = ll.pid
        cpu0 = {k: cpu_s(p) for k, p in pids.items()}
        lat, errors = sequential(targets, args.n, args.batch, args.warmup)
        total = args.n + args.warmup
        cpu = {k: (cpu_s(p) - cpu0[k]) * 1000 / total for k, p in pids.items()}
        # The fake served every side's requests: its CPU per request of any one side.
        cpu["fake"] /= len(targets)
        p50 = {k: statistics.median(v) * 1000 for k, v in lat.items()}
        p99 = {k: pct(v, 99) * 1000 for k, v in lat.items()}
        seq: dict[str, Any] = {
            "n_per_side": args.n,
            "p50_ms": {k: round(v, 4) for k, v in p50.items()},
            "p99_ms": {k: round(v, 4) for k, v in p99.items()},
            "errors": errors,
        }
        added = {k: p50[k] - p50["direct"] for k in p50 if k != "direct"}
        seq["added_p50_ms"] = {k: round(v, 4) for k, v in added.items()}
        # CPU per request is what a loaded machine cannot inflate the way it inflates
        # latency (every hop waits for a core): the cost the gateway itself adds.
        seq["cpu_ms_per_request"] = {k: round(v, 4) for k, v in cpu.items()}
        # requests per second one core sustains at that CPU per request (one worker)
        seq["requests_per_cpu_s"] = {
            k: round(1000 / v) for k, v in cpu.items() if v > 0 and k != "fake"
        }
        if "gateway_before" in cpu and cpu["gateway"] > 0:
            seq["gateway_cpu_before_over_after"] = round(cpu["gateway_before"] / cpu["gateway"], 2)
        if "litellm" in cpu and cpu["gateway"] > 0:
            seq["litellm_cpu_over_gateway_cpu"] = round(cpu["litellm"] / cpu["gateway"], 1)
        if "litellm" in added and added["gateway"] > 0:
            seq["litellm_added_over_gateway_added"] = round(added["litellm"] / added["gateway"], 1)
        out["sequential"] = seq

        if args.transport_n > 0:
            out["upstream_transport"] = transports(
                *targets["direct"], args.transport_n, args.batch, 64
            )

        # ---------------------------------------------------------- streaming
        sbody = {**body, "stream": True, "stream_options": {"include_usage": True}}
        if args.stream_clients > 0:
            sides = {
                "direct": (
                    sse_port,
                    "/v1/chat/completions",
                    {**sbody, "model": "s-1"},
                    {"authorization": "Bearer sk-fast"},
                ),
                "gateway": (
                    gw_port,
                    "/v1/chat/completions",
                    {**sbody, "model": "m/s"},
                    targets["gateway"][2],
                ),
            }
            pid = {"gateway": gw.pid}
            if before is not None:
                sides["gateway_before"] = (b_port, *sides["gateway"][1:])
                pid["gateway_before"] = before.pid
            if gw_cpus is not None:
                # The gateway gets a core; the fake, the load generators and this process
                # share the others, in the direct passes as in the gateway ones.
                for p in pid.values():
                    pin(p, gw_cpus)
                pin(sse.pid, set(args.apparatus_cpus))
                os.sched_setaffinity(0, args.apparatus_cpus)
            order = [*sides, *reversed(sides)]  # a, b, c, c, b, a: drift hits every side
            res: dict[str, Any] = {}
            cpu_gw = dict.fromkeys(pid, 0.0)
            sys_gw = dict.fromkeys(pid, 0.0)
            cpu_fake = dict.fromkeys(sides, 0.0)
            raw: dict[str, dict[str, Any]] = {}
            for name in order:
                port, path, b, h = sides[name]
                c0 = {k: (cpu_s(v), cpu_s(v, SYS)) for k, v in pid.items()}
                f0 = cpu_s(sse.pid)
                got = stream_side("127.0.0.1", port, path, b, h, args)
                cpu_fake[name] += cpu_s(sse.pid) - f0
                if name in pid:
                    cpu_gw[name] += cpu_s(pid[name]) - c0[name][0]
                    sys_gw[name] += cpu_s(pid[name], SYS) - c0[name][1]
                acc = raw.setdefault(
                    name,
                    {"errors": {}, **{k: [] for k in SERIES}},
                )
                for k in SERIES:
                    acc[k] += got[k]
                for k, v in got["errors"].items():
                    acc["errors"][k] = acc["errors"].get(k, 0) + v
                acc["wall"] = acc.get("wall", 0.0) + got["wall"]
            for name, acc in raw.items():
                res[name] = summary(acc)
                n = res[name]["streams"]
                res[name]["fake_cpu_ms_per_stream"] = (
                    round(cpu_fake[name] * 1000 / n, 3) if n else None
                )
                if name in pid:
                    c = cpu_gw[name]
                    res[name]["gateway_cpu_s"] = round(c, 3)
                    res[name]["gateway_system_cpu_s"] = round(sys_gw[name], 3)
                    # one worker = at most one core; on a loaded machine it gets less, so
                    # the load-independent figure is streams per CPU-second it used
                    res[name]["streams_per_cpu_s"] = round(n / c, 1) if c else None
                    res[name]["cpu_ms_per_stream"] = round(c * 1000 / n, 3) if n else None
                    # each stream is 1 + chunks + 2 events (role, content, finish, usage)
                    ev = n * (args.stream_chunks + 3)
                    res[name]["chunks_per_cpu_s"] = round(ev / c) if c else None
            st: dict[str, Any] = {
                "clients": args.stream_clients,
                "streams_per_side": 2 * args.stream_clients * args.stream_rounds,
                "load_processes": args.stream_procs,
                "chunks_per_stream": args.stream_chunks,
                "chunk_gap_ms": args.chunk_ms,
                "upstream": "asyncio streaming fake, timestamped chunks (--sse-fake)",
                "pinned": (
                    {"gateway_cpus": sorted(gw_cpus), "measuring_cpus": args.apparatus_cpus}
                    if gw_cpus is not None
                    else False
                ),
                **res,
            }
            for name in pid:
                st[f"added_ms_{name}"] = {
                    f"{k}_{q}": round(res[name][f"{k}_{q}_ms"] - res["direct"][f"{k}_{q}_ms"], 3)
                    for k in SERIES
                    for q in ("p50", "p99")
                    if f"{k}_{q}_ms" in res[name] and f"{k}_{q}_ms" in res["direct"]
                }
            out["streaming"] = st
        out["loadavg_after"] = os.getloadavg()[0]
    finally:
        if procs.procs and procs.procs[0].stdin:
            with contextlib.suppress(OSError):
                procs.procs[0].stdin.close()
        procs.close()
        tmp.cleanup()
        if state_prefix is not None:  # the run's budget keys, under its own prefix
            import redis

            r = redis.Redis.from_url(args.redis)
            for key in r.scan_iter(match=state_prefix + ":*", count=1000):
                r.delete(key)
            r.close()

    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
