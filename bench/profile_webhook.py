"""Where a webhook's time goes, in one process, one request at a time (no HTTP server, no contention).

    .venv/bin/python bench/profile_webhook.py [--requests 1000] [--db-url ...]

Posts signed text webhooks (the same ones as bench/webhook_bench.py) through Flask's test client
to the real app on the bench database, with the job backend replaced by a recorder, then runs each
recorded job (process_chat) inline right after its request. For the two phases (request path, job)
it prints wall and CPU ms per webhook, SQL statements and commits per webhook, and, from cProfile,
the share of time by layer (DB driver round trips, SQLAlchemy, Flask/Werkzeug, logging, app code...)
and the heaviest app functions. Writes bench/results/profile_webhook.json.

Not a *_bench.py script: bench/run_all.py does not run it; it is the tool to use when the bench misses.
"""
import argparse
import cProfile
import json
import logging
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

from webhook_bench import (APP_SECRET, DEFAULT_DB_URL, MESSAGES, RESULTS, VERIFY_TOKEN,  # noqa: E402
                           customer_numbers, prepare_database, text_webhook, wamid_for)

LAYERS = (  # first match wins, on the file of the function that spends the time itself
    ("DB driver + MariaDB round trips", ("pymysql", "socket.py", "<method 'recv_into'", "<method 'sendall'",
                                         "ssl.py")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("Flask/Werkzeug/extensions", ("flask", "werkzeug", "jinja2", "itsdangerous", "flask_")),
    ("logging", ("logging",)),
    ("json", ("json",)),
    ("threading/locks", ("threading.py", "<method 'acquire'", "queue.py")),
    ("app code", (str(ROOT / "services"), str(ROOT / "routes"), str(ROOT / "models"), str(ROOT / "app.py"),
                  str(ROOT / "extensions.py"))),
)


class RecordedJobs:
    def __init__(self):
        self.pending = []

    def enqueue(self, spec, args):
        self.pending.append((spec.task, args))
        return "recorded"

    def enqueue_many(self, calls):
        return [self.enqueue(spec, args) for spec, args in calls]

    def enqueue_in(self, delay, spec, args):
        return "deferred-dropped"

    def enqueue_once(self, spec, args):
        if (spec.task, args) in self.pending:
            return None
        return self.enqueue(spec, args)

    def stats(self):
        return {"backend": "recorded", "pending": len(self.pending)}


class SqlCounter:
    def __init__(self):
        self.statements = self.commits = self.rollbacks = 0
        self.log = None  # a list while statements are being listed (--statements)

    def install(self, engine):
        from sqlalchemy import event
        event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *a: self._statement(statement))
        event.listen(engine, "commit", lambda *a: self._commit())
        event.listen(engine, "rollback", lambda *a: self._rollback())

    def _statement(self, statement):
        self.statements += 1
        if self.log is not None:
            self.log.append(" ".join(statement.split())[:160])

    def _commit(self):
        self.commits += 1
        if self.log is not None:
            self.log.append("COMMIT")

    def _rollback(self):
        self.rollbacks += 1

    def snapshot(self):
        return self.statements, self.commits, self.rollbacks


def layer_of(filename):
    for name, needles in LAYERS:
        if any(needle in filename for needle in needles):
            return name
    return "other (stdlib, hmac, uuid...)"


def profile_shares(profile):
    stats = pstats.Stats(profile)
    by_layer, by_app_function, total = Counter(), Counter(), 0.0
    for (filename, line, function), (_cc, _nc, tottime, cumtime, _callers) in stats.stats.items():
        where = filename if filename != "~" else function
        by_layer[layer_of(where)] += tottime
        total += tottime
        if filename.startswith(str(ROOT)) and "/.venv/" not in filename:
            by_app_function[f"{Path(filename).relative_to(ROOT)}:{line} {function}"] = cumtime
    return total, by_layer, by_app_function


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--quiet-logs", action="store_true", help="logging at WARNING (price the INFO lines)")
    parser.add_argument("--statements", action="store_true",
                        help="also list the SQL of one more webhook's jobs, job by job")
    parser.add_argument("--json", default=str(RESULTS / "profile_webhook.json"))
    args = parser.parse_args(argv)

    env = {"DATABASE_URL": args.db_url, "SECRET_KEY": "bench-secret-key-not-the-default", "META_APP_SECRET": APP_SECRET,
           "VERIFY_TOKEN": VERIFY_TOKEN, "APP_ENV": "production", "WHATSAPP_TRANSPORT": "sandbox"}
    prepare_database(args.db_url, {**os.environ, **env})
    os.environ.update(env)
    for name in ("META_TOKEN", "JOBS_BACKEND", "REDIS_URL"):
        os.environ.pop(name, None)

    from app import create_app
    from extensions import db
    from services.jobs import run_task
    app = create_app()
    app.extensions["jobs"] = jobs = RecordedJobs()
    # production sends INFO lines to stderr; keep them (they are part of the cost) but away from the terminal
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_handler = logging.FileHandler(RESULTS / "profile_webhook.log")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(log_handler)
    root.setLevel(logging.WARNING if args.quiet_logs else logging.INFO)
    counter = SqlCounter()
    with app.app_context():
        counter.install(db.engine)
    client = app.test_client()
    numbers = customer_numbers(args.numbers)

    def one(seq, profile_request=None, profile_job=None):
        numero = numbers[seq * 7 % len(numbers)]
        body = text_webhook(wamid_for(f"profile-{seq}-{time.time_ns()}"), numero, f"Cliente {numero[-4:]}",
                            MESSAGES[seq % len(MESSAGES)], int(time.time()))
        from services.signatures import meta_signature
        headers = {"X-Hub-Signature-256": meta_signature(APP_SECRET, body)}
        s0, w0, c0 = counter.snapshot(), time.perf_counter(), time.process_time()
        if profile_request:
            profile_request.enable()
        response = client.post("/webhook", data=body, headers=headers, content_type="application/json")
        if profile_request:
            profile_request.disable()
        w1, c1, s1 = time.perf_counter(), time.process_time(), counter.snapshot()
        assert response.status_code == 200, response.get_data(as_text=True)
        if profile_job:
            profile_job.enable()
        while jobs.pending:
            task, task_args = jobs.pending.pop(0)
            if counter.log is not None:
                counter.log.append(f"-- job {task}{task_args}")
            with app.app_context():
                run_task(task, *task_args)
        if profile_job:
            profile_job.disable()
        w2, c2, s2 = time.perf_counter(), time.process_time(), counter.snapshot()
        return (w1 - w0, c1 - c0, *[b - a for a, b in zip(s0, s1)]), (w2 - w1, c2 - c1, *[b - a for a, b in zip(s1, s2)])

    for seq in range(args.warmup):
        one(seq)
    phases = {"request": [0.0] * 5, "job": [0.0] * 5}
    for seq in range(args.warmup, args.warmup + args.requests):
        for name, values in zip(("request", "job"), one(seq)):
            phases[name] = [a + b for a, b in zip(phases[name], values)]
    profiles = {"request": cProfile.Profile(), "job": cProfile.Profile()}
    for seq in range(args.warmup + args.requests, args.warmup + 2 * args.requests):
        one(seq, profiles["request"], profiles["job"])

    if args.statements:
        counter.log = []
        one(args.warmup + 2 * args.requests)
        print("statements of one more webhook's jobs (the journal's INSERT runs on the driver's cursor, unlisted):")
        for line in counter.log:
            print(f"  {line}")
        counter.log = None
        print()

    n = args.requests
    report = {"requests": n, "quiet_logs": args.quiet_logs, "db_url": args.db_url, "phases": {}}
    print(f"profile: {n} webhooks, one at a time, in-process (Flask test client), MariaDB {args.db_url}\n")
    print(f"{'phase':<9} {'wall ms':>8} {'cpu ms':>7} {'wait ms':>8} {'statements':>10} {'commits':>8} {'rollbacks':>9}")
    for name, (wall, cpu, statements, commits, rollbacks) in phases.items():
        row = {"wall_ms": round(wall * 1000 / n, 3), "cpu_ms": round(cpu * 1000 / n, 3),
               "wait_ms": round((wall - cpu) * 1000 / n, 3), "statements": round(statements / n, 2),
               "commits": round(commits / n, 2), "rollbacks": round(rollbacks / n, 2)}
        report["phases"][name] = row
        print(f"{name:<9} {row['wall_ms']:>8.2f} {row['cpu_ms']:>7.2f} {row['wait_ms']:>8.2f} {row['statements']:>10.2f} "
              f"{row['commits']:>8.2f} {row['rollbacks']:>9.2f}")
    print("(job = the jobs of one webhook run inline after it: intake drain, process_chat (flow engine, outbox, "
          "sandbox send, leases), sentiment)")
    for name, profile in profiles.items():
        total, by_layer, by_function = profile_shares(profile)
        report["phases"][name]["layers_pct"] = {k: round(v * 100 / total, 1) for k, v in by_layer.most_common()}
        report["phases"][name]["top_app_functions_ms"] = {k: round(v * 1000 / n, 3) for k, v in by_function.most_common(15)}
        print(f"\n{name}: time by layer (cProfile self time, {total * 1000 / n:.2f} ms/webhook under the profiler)")
        for layer, seconds in by_layer.most_common():
            print(f"  {seconds * 100 / total:5.1f}%  {layer}")
        print(f"{name}: heaviest app functions (cumulative ms per webhook, under the profiler)")
        for function, seconds in by_function.most_common(12):
            print(f"  {seconds * 1000 / n:7.2f}  {function}")
    out = Path(args.json)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
