"""Live updates vs request capacity (issue 15, item 2): webhooks and /api/health with 100 panels streaming.

    .venv/bin/python bench/sse_bench.py [--streams 100] [--requests 200] [--targets production,gthread]

1. Creates the database `bench_sse` if missing, migrates it and empties it; empties the RQ queue (Redis db 13);
   creates enough agents (`flask --app app create-user`) for --streams within the per-user cap (5 each).
2. Starts one RQ worker (`flask --app app worker`) and, per target, gunicorn on 127.0.0.1 with the production
   settings (APP_ENV=production, MariaDB, Redis, JOBS_BACKEND=rq, sandbox transport, META_APP_SECRET set):
   - `production`: the Dockerfile's command (scripts/web_command.py: gevent workers);
   - `gthread`: the command before the fix (`-w 2 -k gthread --threads 8`), to show the failure fixed.
3. Signs every agent in, then measures, with no stream open (the baseline) and then with --streams /eventos
   streams open (read all along by one thread): --requests GET /api/health and --requests signed POST /webhook
   (a text message from one of 50 customers), from --clients threads, each request on a new connection with a
   --timeout s timeout, each phase at most --phase-seconds long.
4. Prints p50/p99/max per phase, the ratios streams/baseline, streams open and requests that timed out.

Target (issue): with 100 streams open, every health check and webhook answered in under 1 s (max < 1000 ms) by
the production target. Exit 0 met, 1 missed, 3 wrong results (a webhook answered 200 but not stored, a stream
refused or closed by the production target). Writes bench/results/sse.json and the process logs.
Loopback only; everything started is stopped at the end.
"""
import argparse
import http.client
import json
import math
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from services.signatures import meta_signature  # noqa: E402
from web_command import bound_to, gunicorn_command  # noqa: E402
from webhook_bench import (customer_numbers, free_port, percentile, prepare_database, reset_rq_queue,  # noqa: E402
                           stop_gunicorn, text_webhook, wamid_for)

DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/bench_sse?charset=utf8mb4"
REDIS_URL = "redis://127.0.0.1:6379/13"
APP_SECRET = "bench-app-secret"
PASSWORD = "clave-del-bench-sse"
PER_USER = 5
TARGET_MAX_MS = 1000.0
OLD_COMMAND = ["gunicorn", "-w", "2", "-k", "gthread", "--threads", "8", "-b", "0.0.0.0:8000", "app:create_app()"]


def bench_env(db_url):
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": "bench-sse-secret-key-0123456789",
           "DATABASE_URL": db_url, "REDIS_URL": REDIS_URL, "JOBS_BACKEND": "rq", "WHATSAPP_TRANSPORT": "sandbox",
           "META_APP_SECRET": APP_SECRET, "META_TOKEN": "", "VERIFY_TOKEN": "bench-verify",
           "LOGIN_RATE_LIMIT": "10000 per minute", "LIVE_STREAMS_PER_USER": str(PER_USER), "FLASK_APP": "app"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


# ----------------------------------------------------------------------------- HTTP by hand
# Production session cookies are Secure; over plain loopback HTTP they are passed by hand.

def request(port, method, path, body=b"", headers=None, timeout=6.0):
    """(status, body) on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Set-Cookie") or ""
    finally:
        conn.close()


def session_cookie(set_cookie):
    match = re.search(r"session=([^;]+)", set_cookie)
    return match.group(1) if match else None


def sign_in(port, username):
    _, page, set_cookie = request(port, "GET", "/login")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    status, _, set_cookie = request(
        port, "POST", "/login", f"username={username}&password={PASSWORD}&csrf_token={token}".encode(),
        {"Cookie": f"session={session_cookie(set_cookie)}", "Content-Type": "application/x-www-form-urlencoded"})
    if status != 302:
        raise SystemExit(f"sign-in of {username} answered {status}")
    return session_cookie(set_cookie)


class Streams:
    """Open /eventos connections, drained by one thread (heartbeats, events), counting the ones that end."""

    def __init__(self, port, cookies, count, open_timeout):
        self.selector, self.socks, self.status, self.closed = selectors.DefaultSelector(), [], {}, 0
        for index in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(f"GET /eventos HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                         f"Cookie: session={cookies[index // PER_USER]}\r\n\r\n".encode())
            sock.setblocking(False)
            self.socks.append(sock)
            self.selector.register(sock, selectors.EVENT_READ, bytearray())
        self.running = True
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()
        deadline = time.time() + open_timeout
        while time.time() < deadline and len(self.status) < count:
            time.sleep(0.1)

    def _drain(self):
        while self.running:
            for key, _ in self.selector.select(0.2):
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(key.fileobj)
                    self.closed += 1
                    continue
                if key.fileobj not in self.status:
                    key.data.extend(data)
                    if b"\r\n" in key.data:
                        self.status[key.fileobj] = int(bytes(key.data).split(b" ", 2)[1])

    def opened(self):
        return sum(1 for status in self.status.values() if status == 200)

    def close(self):
        self.running = False
        self.thread.join(2)
        for sock in self.socks:
            sock.close()


# ----------------------------------------------------------------------------- measuring

def measure(port, requests, clients, timeout, budget, make_request):
    """Latencies (s) of the requests answered 200 within `timeout`, plus counts of the others."""
    stop_at, lock = time.time() + budget, threading.Lock()
    result = {"latencies": [], "timeouts": 0, "errors": 0, "not_sent": 0, "statuses": {}}

    def one(index):
        if time.time() >= stop_at:
            with lock:
                result["not_sent"] += 1
            return
        method, path, body, headers = make_request(index)
        started = time.perf_counter()
        try:
            status, _, _ = request(port, method, path, body, headers, timeout)
        except (socket.timeout, TimeoutError):
            with lock:
                result["timeouts"] += 1
            return
        except OSError:
            with lock:
                result["errors"] += 1
            return
        elapsed = time.perf_counter() - started
        with lock:
            if status == 200:
                result["latencies"].append(elapsed)
            else:
                result["errors"] += 1
                result["statuses"][status] = result["statuses"].get(status, 0) + 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    return result


def summary(result):
    lat = sorted(result["latencies"])
    ms = lambda value: round(value * 1000, 1) if value == value else None  # noqa: E731 (NaN -> None)
    return {"answered": len(lat), "timeouts": result["timeouts"], "errors": result["errors"],
            "not_sent": result["not_sent"], "statuses": result["statuses"],
            "p50_ms": ms(percentile(lat, 0.50)), "p99_ms": ms(percentile(lat, 0.99)),
            "max_ms": ms(lat[-1]) if lat else None}


def webhook_requests(tag):
    numbers = customer_numbers(50)

    def make(index):
        body = text_webhook(wamid_for(f"{tag}-{index}-{time.time_ns()}"), numbers[index % len(numbers)],
                            "Cliente", "hola, ¿siguen abiertos?", int(time.time()))
        return "POST", "/webhook", body, {"Content-Type": "application/json",
                                          "X-Hub-Signature-256": meta_signature(APP_SECRET, body)}
    return make


def health_request(_index):
    return "GET", "/api/health", b"", {}


def count_events(db_url):
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    with engine.connect() as connection:
        count = connection.scalar(text("SELECT COUNT(*) FROM webhook_events"))
    engine.dispose()
    return count


# ----------------------------------------------------------------------------- processes

def start_web(name, command, port, env):
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = bound_to(command, f"127.0.0.1:{port}")
    command[0] = str(Path(sys.executable).parent / "gunicorn")
    log_path = RESULTS / f"gunicorn-sse-{name}.log"
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: gunicorn exited with {process.returncode}; see {log_path}")
        try:
            if request(port, "GET", "/api/health", timeout=2)[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        stop_gunicorn(process)
        raise SystemExit(f"{name}: gunicorn did not answer within 60 s; see {log_path}")
    time.sleep(1.5)  # every worker booted, not just the first
    return process


def create_users(count, env):
    flask = str(Path(sys.executable).parent / "flask")

    def create(index):
        done = subprocess.run([flask, "--app", "app", "create-user", f"sse{index:03d}", "--password", PASSWORD,
                               "--role", "ventas"], cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"create-user sse{index:03d} failed:\n{done.stdout}{done.stderr}")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(count)))
    return [f"sse{index:03d}" for index in range(count)]


def forget_stream_slots():
    """A gunicorn stopped with streams open leaves their slots to lapse (50 s); the next target starts clean."""
    from redis import Redis
    redis = Redis.from_url(REDIS_URL)
    for key in redis.scan_iter("whatsapp_ia:live_streams:*"):
        redis.delete(key)


def run_target(name, command, args, env, users):
    forget_stream_slots()
    port = free_port()
    web = start_web(name, command, port, env)
    streams = None
    try:
        cookies = [sign_in(port, username) for username in users]
        report = {"command": " ".join(bound_to(command, f"127.0.0.1:{port}"))}
        events_before = count_events(args.db_url)
        phases = {}
        for phase in ("baseline", "streams"):
            if phase == "streams":
                streams = Streams(port, cookies, args.streams, args.open_timeout)
                report["streams_open"] = streams.opened()
            print(f"  {name}: {phase}: " + (f"{report['streams_open']}/{args.streams} streams open; " if streams
                                           else "") + "measuring", flush=True)
            phases[phase] = {
                "health": summary(measure(port, args.requests, args.clients, args.timeout, args.phase_seconds,
                                          health_request)),
                "webhook": summary(measure(port, args.requests, args.clients, args.timeout, args.phase_seconds,
                                           webhook_requests(f"{name}-{phase}"))),
            }
        report["streams_still_open"] = args.streams - streams.closed
        report["phases"] = phases
        answered = sum(phases[p]["webhook"]["answered"] for p in phases)
        time.sleep(1)
        report["webhooks_answered"], report["webhooks_stored"] = answered, count_events(args.db_url) - events_before
        return report
    finally:
        if streams is not None:
            streams.close()
        stop_gunicorn(web)


def ratio(after, before):
    return f"x{after / before:.1f}" if after and before else "n/a (none answered)"


def print_report(reports, args):
    print()
    print(f"{'target':<11} {'phase':<9} {'what':<8} {'answered':>8} {'timeouts':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'not sent':>8}")
    for name, report in reports.items():
        for phase, figures in report["phases"].items():
            label = "no stream" if phase == "baseline" else f"{report['streams_open']} open"
            for what in ("health", "webhook"):
                f = figures[what]
                print(f"{name:<11} {label:<9} {what:<8} {f['answered']:>4}/{args.requests:<3} {f['timeouts']:>8} "
                      f"{f['p50_ms'] or '-':>8} {f['p99_ms'] or '-':>8} {f['max_ms'] or '-':>8} {f['not_sent']:>8}")
        for what in ("health", "webhook"):
            base, loaded = report["phases"]["baseline"][what], report["phases"]["streams"][what]
            print(f"{name:<11} ratio streams/baseline {what}: p50 {ratio(loaded['p50_ms'], base['p50_ms'])}, "
                  f"p99 {ratio(loaded['p99_ms'], base['p99_ms'])}")
        print(f"{name:<11} streams open {report['streams_open']}/{args.streams}, still open at the end "
              f"{report['streams_still_open']}; webhooks answered {report['webhooks_answered']}, stored "
              f"{report['webhooks_stored']}")


def verdict(reports, args):
    production = reports.get("production")
    if production is None:
        return 0
    loaded = production["phases"]["streams"]
    if (production["streams_open"] < args.streams or production["streams_still_open"] < args.streams
            or production["webhooks_stored"] < production["webhooks_answered"]
            or any(loaded[w]["errors"] for w in ("health", "webhook"))):
        print("WRONG: the production target refused or dropped a stream, failed a request or lost a webhook")
        return 3
    met = all(loaded[w]["answered"] == args.requests and (loaded[w]["max_ms"] or 1e9) < TARGET_MAX_MS
              for w in ("health", "webhook"))
    print(f"target (production, {args.streams} streams open: every health check and webhook < "
          f"{TARGET_MAX_MS:.0f} ms): {'met' if met else 'MISSED'}")
    return 0 if met else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_SSE_DATABASE_URL", DEFAULT_DB_URL))
    parser.add_argument("--streams", type=int, default=100, help="/eventos streams held open (default 100)")
    parser.add_argument("--requests", type=int, default=200, help="health checks and webhooks per phase (200)")
    parser.add_argument("--clients", type=int, default=4, help="client threads sending them (default 4)")
    parser.add_argument("--timeout", type=float, default=6.0, help="per-request timeout, s (default 6)")
    parser.add_argument("--phase-seconds", type=float, default=40.0,
                        help="at most this long per phase and kind of request; the rest is not sent (default 40)")
    parser.add_argument("--open-timeout", type=float, default=10.0, help="wait for the streams' headers (s)")
    parser.add_argument("--targets", default="production,gthread",
                        help="comma-separated: production (the Dockerfile's command), gthread (the old one)")
    args = parser.parse_args(argv)
    commands = {"production": gunicorn_command(), "gthread": OLD_COMMAND}
    targets = [t for t in args.targets.split(",") if t]
    if not targets or any(t not in commands for t in targets):
        parser.error(f"--targets: choose among {', '.join(commands)}")

    env = bench_env(args.db_url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"database {args.db_url.split('@')[-1]}, Redis {REDIS_URL}, {args.streams} streams, "
          f"{args.requests} requests per kind and phase", flush=True)
    prepare_database(args.db_url, env)
    reset_rq_queue(REDIS_URL)
    users = create_users(math.ceil(args.streams / PER_USER), env)
    worker = subprocess.Popen([str(Path(sys.executable).parent / "flask"), "--app", "app", "worker"], cwd=ROOT,
                              env=env, stdout=open(RESULTS / "rq-worker-sse.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    reports = {}
    try:
        time.sleep(2)
        if worker.poll() is not None:
            raise SystemExit(f"rq worker exited with {worker.returncode}; see {RESULTS}/rq-worker-sse.log")
        for name in targets:
            print(f"{name}: {' '.join(commands[name])}", flush=True)
            reports[name] = run_target(name, commands[name], args, env, users)
    finally:
        stop_gunicorn(worker)
    (RESULTS / "sse.json").write_text(json.dumps(reports, indent=2))
    print_report(reports, args)
    return verdict(reports, args)


if __name__ == "__main__":
    sys.exit(main())
