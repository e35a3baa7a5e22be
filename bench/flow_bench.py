"""Webhook in -> bot reply handed to the Graph API: end-to-end latency on MariaDB.

    .venv/bin/python bench/flow_bench.py [--loads light=5,moderate=25] [--seconds 20] [--numbers 200]

1. Creates the bench database (`whatsapp_ia_flow_bench`) if missing, migrates it, empties it and seeds
   the demo flow (`flask --app app seed`), so the bot answers with the real rules (lists, buttons, text).
2. Starts a local fake Graph API server in this process: `POST /{version}/{phone}/messages` records the
   moment the request arrives and the recipient, and answers like Graph (`{"messages": [{"id": ...}]}`).
3. Starts the real app under gunicorn (same settings as bench/webhook_bench.py: 2 workers x 4 threads,
   production mode) with `WHATSAPP_TRANSPORT=cloud` pointed at the fake server, jobs on the in-process
   thread pool (the default).
4. For each load (name=rate in webhooks/s, open loop: request k is due at k/rate, its latency counts from
   then), posts signed Meta text webhooks; each customer number has at most one message in flight, and
   the next message of a number is posted only after its reply arrived, so each reply is matched to its
   webhook. The customers walk the demo flow: "hola" (list), "1" (buttons), "precios" (text), "menu".
5. Prints per load: webhooks/s, webhook answer p50/p99 (POST start -> 200) and flow p50/p99
   (POST start -> the transport's request arriving at Graph), replies missing. Writes
   bench/results/flow.json.

Exit code: 0 every reply arrived, 3 a reply missing or a webhook not answered 200.
"""
import argparse
import http.client
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

from webhook_bench import (APP_SECRET, RESULTS, VERIFY_TOKEN, customer_numbers, free_port,  # noqa: E402
                           percentile, prepare_database, start_gunicorn, stop_gunicorn, text_webhook, wamid_for)

from services.signatures import meta_signature  # noqa: E402
from tests.fakes.server import LocalServer  # noqa: E402

DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/whatsapp_ia_flow_bench?charset=utf8mb4"
PHONE_NUMBER_ID = "106540352242922"
WALK = ("hola", "1", "precios", "menu")  # demo flow: list, buttons, text, list again


class FakeGraph(LocalServer):
    """Records when each outbound message reaches 'Graph', by recipient."""

    def __init__(self):
        super().__init__()
        self.arrivals = {}  # numero -> list of monotonic arrival times
        self.lock = threading.Condition()
        self.ids = itertools.count(1)
        self.start()

    def handle(self, request, body):
        arrived = time.monotonic()
        to = (json.loads(body or b"{}") or {}).get("to", "")
        with self.lock:
            self.arrivals.setdefault(to, []).append(arrived)
            self.lock.notify_all()
        self.respond(request, 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                    "messages": [{"id": f"wamid.flowbench{next(self.ids)}"}]})

    def first_after(self, numero, since, timeout):
        """The first arrival for `numero` at or after `since` (monotonic), waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for at in self.arrivals.get(numero, ()):
                    if at >= since:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)



def run_load(port, graph, numbers, rate, seconds, warmup, tag, reply_timeout):
    """Open loop at `rate`/s; returns answer and flow latencies (s) of the measured window."""
    free = list(numbers)
    random.Random(tag).shuffle(free)
    free_lock = threading.Lock()
    step_of = {numero: 0 for numero in numbers}
    out = {"answer": [], "flow": [], "sent": 0, "not_200": 0, "missing": 0, "busy_skipped": 0, "samples": []}
    out_lock = threading.Lock()
    local = threading.local()
    start = time.monotonic() + 0.5
    measure_at, stop_at = start + warmup, start + warmup + seconds

    def one(due, numero, measured):
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local.conn = conn
        text = WALK[step_of[numero] % len(WALK)]
        step_of[numero] += 1
        body = text_webhook(wamid_for(f"{tag}-{numero}-{step_of[numero]}-{due}"), numero, f"Cliente {numero[-4:]}",
                            text, int(time.time()))
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, body)}
        status = 0
        try:
            conn.request("POST", "/webhook", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            local.conn = None
            with out_lock:
                out["samples"].append(f"{type(error).__name__}: {error}")
        answered = time.monotonic()
        arrived = graph.first_after(numero, due, reply_timeout) if status == 200 else None
        with out_lock:
            if measured:
                out["sent"] += 1
                if status != 200:
                    out["not_200"] += 1
                else:
                    out["answer"].append(answered - due)
                    if arrived is None:
                        out["missing"] += 1
                    else:
                        out["flow"].append(arrived - due)
        # Let a second reply of the same message (if any) land before the number is used again.
        time.sleep(0.05)
        with free_lock:
            free.append(numero)

    pool, k = [], 0
    while True:
        due = start + k / rate
        now = time.monotonic()
        if due >= stop_at:
            break
        if due > now:
            time.sleep(due - now)
        k += 1
        with free_lock:
            numero = free.pop(0) if free else None
        if numero is None:
            out["busy_skipped"] += 1
            continue
        worker = threading.Thread(target=one, args=(due, numero, due >= measure_at), daemon=True)
        worker.start()
        pool.append(worker)
        pool = [w for w in pool if w.is_alive()]
    for worker in pool:
        worker.join(reply_timeout + 35)
    return out


def summarize(out, seconds):
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    answer, flow = sorted(out["answer"]), sorted(out["flow"])
    return {
        "webhooks": out["sent"], "webhooks_per_s": round(out["sent"] / seconds, 1), "not_200": out["not_200"],
        "replies": len(flow), "replies_missing": out["missing"], "skipped_all_numbers_busy": out["busy_skipped"],
        "answer_p50_ms": ms(percentile(answer, 0.5)), "answer_p99_ms": ms(percentile(answer, 0.99)),
        "flow_p50_ms": ms(percentile(flow, 0.5)), "flow_p90_ms": ms(percentile(flow, 0.9)),
        "flow_p99_ms": ms(percentile(flow, 0.99)), "flow_max_ms": ms(flow[-1]) if flow else None,
        "error_samples": sorted(set(out["samples"]))[:5],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("FLOW_BENCH_DATABASE_URL", DEFAULT_DB_URL))
    parser.add_argument("--loads", default="light=5,moderate=25",
                        help="name=webhooks per second, comma separated (default light=5,moderate=25)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--numbers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--reply-timeout", type=float, default=10.0)
    parser.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", default=str(RESULTS / "flow.json"))
    args = parser.parse_args(argv)
    loads = []
    for item in args.loads.split(","):
        name, _, rate = item.partition("=")
        try:
            loads.append((name.strip(), float(rate)))
        except ValueError:
            parser.error(f"--loads: {item!r} is not name=rate")
    if args.db_url.rstrip("/").endswith("/test") or "/test?" in args.db_url:
        parser.error("never the `test` database (the test suite drops it)")

    graph = FakeGraph()
    env = {**os.environ, "DATABASE_URL": args.db_url, "SECRET_KEY": "bench-secret-key-not-the-default",
           "META_APP_SECRET": APP_SECRET, "VERIFY_TOKEN": VERIFY_TOKEN, "APP_ENV": "production",
           "WHATSAPP_TRANSPORT": "cloud", "META_TOKEN": "flow-bench-token", "PHONE_NUMBER_ID": PHONE_NUMBER_ID,
           "GRAPH_API_URL": graph.url, "ADMIN_PASSWORD": "flow-bench-admin-password", "PYTHONUNBUFFERED": "1"}
    for name in ("JOBS_BACKEND", "REDIS_URL"):
        env.pop(name, None)
    for item in args.app_env:
        key, _, value = item.partition("=")
        env[key] = value
    prepare_database(args.db_url, env)
    seeded = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "seed"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if seeded.returncode != 0:
        raise SystemExit(f"flask seed failed:\n{seeded.stdout}\n{seeded.stderr}")
    numbers = customer_numbers(args.numbers)
    print(f"flow bench: {os.cpu_count()} CPUs, gunicorn -w {args.workers} -k gthread --threads {args.threads}, "
          f"cloud transport -> fake Graph {graph.url}, demo flow, {args.numbers} customers, "
          f"{args.seconds:.0f} s per load after {args.warmup:.0f} s warm-up, db {args.db_url.split('@')[-1]}",
          flush=True)
    port = free_port()
    process, log_path = start_gunicorn("flow", "app:create_app()", port, args, env)
    results = {}
    try:
        for name, rate in loads:
            out = run_load(port, graph, numbers, rate, args.seconds, args.warmup, f"{name}{int(time.time())}",
                           args.reply_timeout)
            results[name] = {"rate_offered": rate, **summarize(out, args.seconds)}
            r = results[name]
            print(f"  {name:<9} offered {rate:5.1f}/s  done {r['webhooks_per_s']:5.1f}/s  "
                  f"answer p50 {r['answer_p50_ms']:7.1f} ms p99 {r['answer_p99_ms']:7.1f} ms  |  "
                  f"webhook->Graph p50 {r['flow_p50_ms']:7.1f} ms p90 {r['flow_p90_ms']:7.1f} ms "
                  f"p99 {r['flow_p99_ms']:7.1f} ms max {r['flow_max_ms']} ms  |  replies {r['replies']} "
                  f"missing {r['replies_missing']} not-200 {r['not_200']}", flush=True)
            time.sleep(1.0)
    finally:
        stop_gunicorn(process)
        graph.stop()
    bad = any(r["replies_missing"] or r["not_200"] or not r["replies"] for r in results.values())
    report = {"loads": results, "workers": args.workers, "threads": args.threads, "numbers": args.numbers,
              "seconds": args.seconds, "db_url": args.db_url, "gunicorn_log": str(log_path),
              "verdict": "replies missing or errors" if bad else "every reply handed to Graph"}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"verdict: {report['verdict']}; written {args.json}")
    return 3 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
