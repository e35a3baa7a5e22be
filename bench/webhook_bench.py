"""Webhook throughput and latency: the real app on MariaDB vs a bare Flask endpoint.

    .venv/bin/python bench/webhook_bench.py [--seconds 20] [--concurrency 8] [--workers 2] [--threads 4]

1. Creates the bench database if missing, migrates it (`flask db upgrade`) and empties its tables.
2. Starts the real app (`app:create_app()`) under gunicorn gthread, production mode, sandbox transport,
   then the bare app (bench/bare_app.py) with the same worker/thread settings, one after the other.
3. Drives each with a closed-loop load: --procs processes x (concurrency / procs) threads, each with
   its own keep-alive http.client connection, posting signed (X-Hub-Signature-256) Meta text webhooks
   (~1 KB, unique wamid per request, ~1000 distinct customer numbers); warm-up first, then a fixed
   measured window.
4. Prints webhooks/s, p50/p90/p99/max latency, errors for both, the app/bare throughput ratio,
   Message rows stored vs 200s answered, and CPU spent per request by the gunicorn workers,
   MariaDB and the load generator. Writes bench/results/webhook.json.

Targets (issue): app p99 < 50 ms and app throughput >= 0.5 x bare, on MariaDB.
"""
import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path.insert(0, str(ROOT))

from services.signatures import meta_signature  # noqa: E402

APP_SECRET = "bench-app-secret"
VERIFY_TOKEN = "bench-verify-token"
DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/whatsapp_ia_bench?charset=utf8mb4"
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.5

MESSAGES = [
    "Hola, buenas tardes. Quisiera saber si todavía tienen disponible el modelo que publicaron ayer en su "
    "catálogo, el de color azul en talla mediana, y cuánto cuesta el envío a Guadalajara. También me "
    "gustaría saber si aceptan pago con tarjeta o sólo transferencia, y cuánto tarda en llegar. Lo "
    "necesito para la próxima semana porque salgo de viaje el sábado temprano. ¡Muchas gracias!",
    "Buenos días, hice un pedido el lunes pasado con el número 48213 y todavía no me llega la guía de "
    "rastreo. ¿Me pueden ayudar a revisar en qué estado está? Necesito el paquete antes del viernes porque "
    "es un regalo de cumpleaños. Ya intenté llamar al teléfono de la página pero nadie contesta. Quedo "
    "atenta a su respuesta, muchas gracias por su apoyo y paciencia.",
    "Qué tal, me interesa contratar el plan empresarial para mi negocio. Somos una tienda pequeña con tres "
    "sucursales y unos quince empleados. ¿Podrían enviarme información de precios, formas de pago y si "
    "incluye soporte técnico los fines de semana? Si es posible, que alguien me llame por la tarde, "
    "después de las cinco, al mismo número desde el que les escribo. Saludos cordiales.",
]


# ----------------------------------------------------------------------------- payloads

def wamid_for(unique: str) -> str:
    """A wamid shaped like Meta's (wamid. + base64), unique per request."""
    return "wamid." + base64.b64encode(("HBgN" + unique).encode()).decode().rstrip("=")


def text_webhook(wamid: str, numero: str, name: str, body: str, timestamp: int) -> bytes:
    """A Meta text webhook as Meta sends it (compact JSON)."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": name}, "wa_id": numero}],
            "messages": [{"from": numero, "id": wamid, "timestamp": str(timestamp), "type": "text",
                          "text": {"body": body}}]},
        "field": "messages"}]}]}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def customer_numbers(count: int) -> list[str]:
    return [f"52155{10000000 + i * 7919 % 90000000:08d}" for i in range(count)]


# ----------------------------------------------------------------------------- load generator

def _load_thread(port, numbers, tag, start_at, measure_at, stop_at, out, lock, pace=None):
    """Closed loop (next request when the answer comes) or, with pace=(slot, total threads, rate), open loop:
    request k of this thread is due at start + (k * total + slot) / rate and its latency counts from then,
    so a slow answer that delays the next requests shows in their latency too (no coordinated omission)."""
    rng = random.Random(tag)
    latencies, ok, errors, warm_ok, warm_errors, samples, seq = [], 0, 0, 0, 0, [], 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        now = time.time()
        if pace:
            slot, total, rate = pace
            due = start_at + (seq * total + slot) / rate
            if due > now:
                time.sleep(due - now)
                now = time.time()
        if now >= stop_at:
            break
        seq += 1
        numero = rng.choice(numbers)
        body = text_webhook(wamid_for(f"{tag}-{seq}-{int(start_at)}"), numero, f"Cliente {numero[-4:]}",
                            rng.choice(MESSAGES), int(now))
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, body),
                   "User-Agent": "facebookexternalua"}
        t0 = time.perf_counter()
        if pace:
            t0 -= max(0.0, now - due)  # late start: the wait counts
        status, problem = 0, None
        try:
            conn.request("POST", "/webhook", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        except (OSError, http.client.HTTPException) as error:
            problem = f"{type(error).__name__}: {error}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        elapsed = time.perf_counter() - t0
        good = status == 200
        if not good and problem is None:
            problem = f"HTTP {status}"
        if now < measure_at:
            warm_ok += good
            warm_errors += not good
        else:
            latencies.append(elapsed)
            ok += good
            errors += not good
        if problem and len(samples) < 5:
            samples.append(problem)
    conn.close()
    with lock:
        out["latencies"].extend(latencies)
        out["ok"] += ok
        out["errors"] += errors
        out["warm_ok"] += warm_ok
        out["warm_errors"] += warm_errors
        out["samples"].extend(samples)


def _load_process(index, threads, first_slot, total_threads, rate, port, numbers, start_at, measure_at, stop_at,
                  queue):
    out = {"latencies": [], "ok": 0, "errors": 0, "warm_ok": 0, "warm_errors": 0, "samples": []}
    lock = threading.Lock()
    workers = [threading.Thread(target=_load_thread, daemon=True,
                                args=(port, numbers, f"p{os.getpid()}t{index}-{i}", start_at, measure_at, stop_at,
                                      out, lock, (first_slot + i, total_threads, rate) if rate else None))
               for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    queue.put(out)


def run_load(port, numbers, concurrency, procs, warmup, seconds, rate=0.0):
    procs = max(1, min(procs, concurrency))
    per_proc = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    start_at = time.time() + 1.0  # let every process spawn and connect before the clock starts
    measure_at, stop_at = start_at + warmup, start_at + warmup + seconds
    queue = mp.Queue()
    slots = [sum(per_proc[:i]) for i in range(procs)]
    processes = [mp.Process(target=_load_process, args=(i, n, slots[i], concurrency, rate, port, numbers, start_at,
                                                        measure_at, stop_at, queue))
                 for i, n in enumerate(per_proc)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=warmup + seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    merged = {"latencies": [], "ok": 0, "errors": 0, "warm_ok": 0, "warm_errors": 0, "samples": [], "cpu_seconds": 0.0}
    for result in results:
        for key in ("ok", "errors", "warm_ok", "warm_errors", "cpu_seconds"):
            merged[key] += result[key]
        merged["latencies"].extend(result["latencies"])
        merged["samples"].extend(result["samples"])
    merged["layout"] = per_proc
    return merged


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def summarize(load, seconds):
    lat = sorted(load["latencies"])
    ms = lambda value: round(value * 1000, 2)  # noqa: E731
    requests = load["ok"] + load["errors"]
    return {
        "requests": requests, "ok": load["ok"], "errors": load["errors"],
        "webhooks_per_s": round(load["ok"] / seconds, 1),
        "p50_ms": ms(percentile(lat, 0.50)), "p90_ms": ms(percentile(lat, 0.90)),
        "p99_ms": ms(percentile(lat, 0.99)), "max_ms": ms(lat[-1]) if lat else None,
        "mean_ms": ms(sum(lat) / len(lat)) if lat else None,
        "warmup_ok": load["warm_ok"], "warmup_errors": load["warm_errors"],
        "error_samples": sorted(set(load["samples"]))[:5],
        "loadgen_cpu_s": round(load["cpu_seconds"], 2),
    }


# ----------------------------------------------------------------------------- processes and CPU accounting

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid):
    """pid and all its descendants (gunicorn master + workers)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                pass
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids, children=False):
    """utime + stime of these processes (with children=True, plus their reaped children's)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15 if children else 13]) / CLOCK_TICKS
        except (OSError, IndexError):
            pass
    return total


def mariadb_pids():
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(name, target, port, args, env, extra=()):
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"gunicorn-{name}.log"
    command = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(args.workers), "-k", "gthread",
               "--threads", str(args.threads), "-b", f"127.0.0.1:{port}", "--keep-alive", "5",
               "--graceful-timeout", "10", *extra, target]
    log_file = open(log_path, "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: gunicorn exited with {process.returncode}; see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/webhook")
            conn.getresponse().read()
            conn.close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        stop_gunicorn(process)
        raise SystemExit(f"{name}: gunicorn did not answer within 60 s; see {log_path}")
    time.sleep(0.5 + 0.2 * args.workers)  # every worker booted, not just the first
    return process, log_path


def stop_gunicorn(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ----------------------------------------------------------------------------- database

def prepare_database(db_url, env):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    url = make_url(db_url)
    server = create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{url.database}` "
                                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    server.dispose()
    flask = str(Path(sys.executable).parent / "flask")
    done = subprocess.run([flask, "--app", "app", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"flask db upgrade failed:\n{done.stdout}\n{done.stderr}")
    empty_tables(db_url)


def empty_tables(db_url):
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for (table,) in connection.execute(text("SHOW TABLES")).all():
            if table != "alembic_version":
                connection.execute(text(f"TRUNCATE TABLE `{table}`"))
        connection.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    engine.dispose()


def count_rows(db_url):
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    with engine.connect() as connection:
        counts = {
            "messages_in": connection.scalar(text("SELECT COUNT(*) FROM messages WHERE direction='in'")),
            "messages_out": connection.scalar(text("SELECT COUNT(*) FROM messages WHERE direction='out'")),
            "messages_unprocessed": connection.scalar(
                text("SELECT COUNT(*) FROM messages WHERE direction='in' AND processed_at IS NULL")),
            "replies_pending": connection.scalar(
                text("SELECT COUNT(*) FROM messages WHERE direction='out' AND status='pending'")),
            "replies_sent": connection.scalar(
                text("SELECT COUNT(*) FROM messages WHERE direction='out' AND status IN ('sent', 'delivered')")),
            "webhook_events": connection.scalar(text("SELECT COUNT(*) FROM webhook_events")),
            "events_pending": connection.scalar(
                text("SELECT COUNT(*) FROM webhook_events WHERE processed_at IS NULL")),
            "chats": connection.scalar(text("SELECT COUNT(*) FROM chats")),
        }
    engine.dispose()
    return counts


STATUS_COUNTERS = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete", "Com_commit",
                   "Com_rollback", "Com_savepoint", "Com_release_savepoint", "Innodb_data_fsyncs")


def db_status(db_url):
    """MariaDB's global counters (statements, commits, fsyncs); global, so other clients add noise."""
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SHOW GLOBAL STATUS")).all()
    engine.dispose()
    values = {name: int(value) for name, value in rows if name in STATUS_COUNTERS}
    return values


def wait_processed(db_url, timeout):
    """Seconds until every journaled update was stored, every inbound message answered and every reply handed
    to the transport (None on timeout)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        counts = count_rows(db_url)
        if counts["events_pending"] == 0 and counts["messages_unprocessed"] == 0 and counts["replies_pending"] == 0:
            return round(time.time() - t0, 2)
        time.sleep(0.25)
    return None


# ----------------------------------------------------------------------------- main

def machine_cpu():
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS, sum(fields[:8]) / CLOCK_TICKS


def wait_for_quiet(max_cores, timeout):
    """On a shared machine, wait (up to `timeout` s) until other processes use at most `max_cores`."""
    deadline, busy_cores = time.time() + timeout, None
    while True:
        busy0, total0 = machine_cpu()
        time.sleep(2)
        busy1, total1 = machine_cpu()
        busy_cores = (busy1 - busy0) / max((total1 - total0) / (os.cpu_count() or 1), 1e-9)
        if busy_cores <= max_cores or time.time() >= deadline:
            break
        print(f"  (machine busy: {busy_cores:.2f} cores used by other processes; waiting)", flush=True)
    if busy_cores > max_cores:
        print(f"  WARNING: still {busy_cores:.2f} cores busy elsewhere; figures will be low and noisy", flush=True)
    return round(busy_cores, 2)


def reset_rq_queue(redis_url):
    """Empty the bench's queues so no job from an earlier run points at truncated rows."""
    from redis import Redis
    from rq import Queue

    from services.jobs import LEGACY_QUEUE, QUEUES
    for name in (*QUEUES, LEGACY_QUEUE):
        queue = Queue(name, connection=Redis.from_url(redis_url))
        queue.empty()
        for registry in (queue.failed_job_registry, queue.scheduled_job_registry, queue.deferred_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)


def start_rq_workers(name, count, env):
    flask = str(Path(sys.executable).parent / "flask")
    processes = []
    for index in range(count):
        log_file = open(RESULTS / f"rq-worker-{name}-{index}.log", "w")
        processes.append(subprocess.Popen([flask, "--app", "app", "worker"], cwd=ROOT, env=env, stdout=log_file,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    time.sleep(3)
    for process in processes:
        if process.poll() is not None:
            raise SystemExit(f"{name}: rq worker exited with {process.returncode}; see {RESULTS}/rq-worker-{name}-*.log")
    return processes


def per_request(after, before, total):
    return {k: round((after.get(k, 0) - before.get(k, 0)) / total, 2) for k in STATUS_COUNTERS}


def bench_one(name, spec, args, env, numbers):
    """One target: start gunicorn (and rq workers), warm up, measure, stop; then check what got stored."""
    stores = spec.get("stores", True)
    env = {**env, **spec.get("env", {})}
    busy_before = wait_for_quiet(args.max_other_cores, args.quiet_wait) if args.quiet_wait else None
    if not stores:
        env.pop("DATABASE_URL", None)
    else:
        empty_tables(args.db_url)
    if spec.get("rq"):
        env["REDIS_URL"] = args.redis_url
        reset_rq_queue(args.redis_url)
    port = free_port()
    extra = ("--pythonpath", str(BENCH_DIR)) if spec.get("bench_module") else ()
    process, log_path = start_gunicorn(name, spec["wsgi"], port, args, env, extra)
    workers = []
    try:
        if spec.get("rq"):
            workers = start_rq_workers(name, args.rq_workers, env)
        tree = process_tree(process.pid)
        db_pids = mariadb_pids()
        status0 = db_status(args.db_url) if stores else {}
        print(f"  {name}: gunicorn pid {process.pid} ({len(tree) - 1} workers) on :{port}"
              f"{f', {len(workers)} rq workers' if workers else ''}, "
              f"{args.warmup:g}s warm-up + {args.seconds:g}s measured ...", flush=True)
        load_avg0 = os.getloadavg()[0]
        started = time.time()
        server0, db0, machine0 = cpu_seconds(tree), cpu_seconds(db_pids), machine_cpu()
        jobs0 = sum(cpu_seconds(process_tree(w.pid), children=True) for w in workers)
        load = run_load(port, numbers, args.concurrency, args.procs, args.warmup, args.seconds, args.rate)
        machine1 = machine_cpu()
        server_cpu, db_cpu = cpu_seconds(tree) - server0, cpu_seconds(db_pids) - db0
        # rq forks a work horse per job: its CPU shows in the worker's reaped children (cutime/cstime)
        jobs_cpu = sum(cpu_seconds(process_tree(w.pid), children=True) for w in workers) - jobs0
        result = summarize(load, args.seconds)
        total = max(1, result["requests"] + result["warmup_ok"] + result["warmup_errors"])
        window = (machine1[1] - machine0[1]) / (os.cpu_count() or 1)
        busy = machine1[0] - machine0[0]
        ours = server_cpu + db_cpu + load["cpu_seconds"] + jobs_cpu
        if workers:
            result_jobs = {"rq_worker_cpu_s": round(jobs_cpu, 2)}
        else:
            result_jobs = {}
        result.update(
            wsgi=spec["wsgi"], sent=total, answered_200=result["ok"] + result["warmup_ok"],
            server_cpu_s=round(server_cpu, 2), mariadb_cpu_s=round(db_cpu, 2),
            server_cpu_ms_per_req=round(server_cpu * 1000 / total, 3),
            mariadb_cpu_ms_per_req=round(db_cpu * 1000 / total, 3),
            loadgen_cpu_ms_per_req=round(load["cpu_seconds"] * 1000 / total, 3),
            machine_busy_cores=round(busy / max(window, 1e-9), 2),
            other_processes_cores=round(max(busy - ours, 0) / max(window, 1e-9), 2),
            load_average_at_start=round(load_avg0, 2), other_cores_before=busy_before,
            gunicorn_log=str(log_path.relative_to(ROOT)))
        if workers:
            result.update(rq_workers=len(workers), **result_jobs,
                          rq_worker_cpu_ms_per_req=round(jobs_cpu * 1000 / total, 3))
        if stores:
            at_end = count_rows(args.db_url)
            result["db_per_request_during_load"] = per_request(db_status(args.db_url), status0, total)
            result["unprocessed_at_load_end"] = at_end["messages_unprocessed"]
            result["journal_pending_at_load_end"] = at_end["events_pending"]
            if spec.get("drain"):
                result["drain_seconds"] = wait_processed(args.db_url, args.drain_timeout)
                # first webhook (warm-up included) -> last reply handed to the transport
                result["end_to_end_seconds"] = round(time.time() - started, 2)
                result["db_per_request_incl_drain"] = per_request(db_status(args.db_url), status0, total)
                jobs_all = sum(cpu_seconds(process_tree(w.pid), children=True) for w in workers) - jobs0
                result["server_cpu_ms_per_req_incl_drain"] = round(
                    (cpu_seconds(tree) - server0 + jobs_all) * 1000 / total, 3)
            after = count_rows(args.db_url)
            result.update(
                messages_stored=after["messages_in"], bot_replies_stored=after["messages_out"],
                bot_replies_sent=after["replies_sent"],
                webhook_events=after["webhook_events"], chats=after["chats"],
                unprocessed_after=after["messages_unprocessed"],
                # every 200 is a journaled update; once drained, each is one stored message
                end_to_end_replies_per_second=round(after["replies_sent"] / result["end_to_end_seconds"], 1)
                if result.get("end_to_end_seconds") and result.get("drain_seconds") is not None else None,
                stored_equals_200=after["webhook_events"] == result["answered_200"] and (
                    after["messages_in"] == result["answered_200"] if spec.get("drain") else True))
        return result
    finally:
        stop_gunicorn(process)
        for worker in workers:
            stop_gunicorn(worker)


TARGETS = {
    "app": {"wsgi": "app:create_app()", "drain": True,
            "about": "the real app: journal + 200; storing, flow and sentiment in the in-process thread pool "
                     "(JOBS_BACKEND=thread)"},
    "bare": {"wsgi": "bare_app:create_app()", "bench_module": True, "stores": False,
             "about": "bare Flask endpoint (bench/bare_app.py): read body, 200"},
    "bare-insert": {"wsgi": "bare_app:create_insert_app()", "bench_module": True,
                    "about": "diagnostic: the bare endpoint plus the webhook's INSERT (PyMySQL, autocommit), "
                             "nothing else: the floor under the real webhook"},
    "nojobs": {"wsgi": "app_variants:no_jobs()", "bench_module": True,
               "about": "diagnostic: the real app with background jobs dropped (request path only: journal + 200)"},
    "nojobs-quiet": {"wsgi": "app_variants:no_jobs_quiet()", "bench_module": True,
                     "about": "diagnostic: as nojobs, with INFO logging off"},
    "rq": {"wsgi": "app:create_app()", "drain": True, "rq": True, "env": {"JOBS_BACKEND": "rq"},
           "about": "diagnostic: the real app with JOBS_BACKEND=rq; jobs run by --rq-workers `flask worker` processes"},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL))
    parser.add_argument("--seconds", type=float, default=20, help="measured window per target (default 20)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up before measuring (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="simultaneous connections (default 8)")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: webhooks/s offered, spread over the --concurrency connections, latency "
                        "counted from each request's due time (default 0: closed loop, as fast as answered)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2 = cores)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads per worker (default 4)")
    parser.add_argument("--numbers", type=int, default=1000, help="distinct customer numbers (default 1000)")
    parser.add_argument("--drain-timeout", type=float, default=180, help="max wait for background jobs (s)")
    parser.add_argument("--targets", default="app,bare",
                        help=f"comma-separated, run in this order (default app,bare); known: {', '.join(TARGETS)}")
    parser.add_argument("--rq-workers", type=int, default=1, help="`flask worker` processes for the rq target")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="Redis for the rq target")
    parser.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the real app (repeatable), e.g. JOB_THREADS=2")
    parser.add_argument("--quiet-wait", type=float, default=120,
                        help="before each target, wait up to this many seconds for the machine to be idle (0: don't)")
    parser.add_argument("--max-other-cores", type=float, default=0.3,
                        help="idle enough: at most this many cores busy in other processes (default 0.3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over the targets; figures are each target's median run, ratios the median "
                             "of the rounds' ratios (default 1)")
    parser.add_argument("--json", default=str(RESULTS / "webhook.json"))
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    for target in targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}; known: {', '.join(TARGETS)}")

    env = {**os.environ, "DATABASE_URL": args.db_url, "SECRET_KEY": "bench-secret-key-not-the-default",
           "META_APP_SECRET": APP_SECRET, "VERIFY_TOKEN": VERIFY_TOKEN, "APP_ENV": "production",
           "WHATSAPP_TRANSPORT": "sandbox", "PYTHONUNBUFFERED": "1"}
    for name in ("META_TOKEN", "JOBS_BACKEND", "REDIS_URL"):
        env.pop(name, None)
    for item in args.app_env:
        key, _, value = item.partition("=")
        env[key] = value
    numbers = customer_numbers(args.numbers)
    sample = text_webhook(wamid_for("sample-0"), numbers[0], "Cliente 0000", MESSAGES[0], int(time.time()))
    print(f"webhook bench: {os.cpu_count()} CPUs, gunicorn -w {args.workers} -k gthread --threads {args.threads}, "
          f"concurrency {args.concurrency} ({args.procs} load processes), "
          f"{f'open loop at {args.rate:g}/s' if args.rate else 'closed loop'}, payload {len(sample)} B, "
          f"{args.numbers} numbers, db {args.db_url}", flush=True)

    if any(TARGETS[t].get("stores", True) for t in targets):
        prepare_database(args.db_url, env)
    rounds = []
    for index in range(args.repeat):
        if args.repeat > 1:
            print(f"round {index + 1}/{args.repeat}", flush=True)
        rounds.append({target: bench_one(target, TARGETS[target], args, env, numbers) for target in targets})
    results = {target: median_run([run[target] for run in rounds]) for target in targets}

    report = {"settings": {"cpus": os.cpu_count(), "workers": args.workers, "threads": args.threads,
                           "concurrency": args.concurrency, "procs": args.procs, "rate": args.rate,
                           "seconds": args.seconds, "repeat": args.repeat,
                           "warmup": args.warmup, "numbers": args.numbers, "payload_bytes": len(sample),
                           "db_url": args.db_url, "app_env": args.app_env,
                           "targets": {t: TARGETS[t]["about"] for t in targets}},
              "results": results, "targets": {"p99_ms": TARGET_P99_MS, "ratio": TARGET_RATIO}}
    if args.repeat > 1:
        report["rounds"] = rounds
    if "bare" in results:
        # Each round's ratio pairs runs a minute apart; on a shared machine the median of those is steadier than
        # the ratio of two medians taken at different times.
        per_round = {target: [run[target]["webhooks_per_s"] / max(run["bare"]["webhooks_per_s"], 1e-9)
                              for run in rounds]
                     for target in targets if target != "bare"}
        report["ratios_vs_bare"] = {target: statistics.median(ratios) for target, ratios in per_round.items()}
        report["ratio_rounds"] = {target: [round(r, 3) for r in ratios] for target, ratios in per_round.items()}
    if "app" in results and "bare" in results:
        report["ratio_app_bare"] = round(report["ratios_vs_bare"]["app"], 3)
        report["ratio_target_met"] = report["ratio_app_bare"] >= TARGET_RATIO
    if "app" in results:
        report["p99_target_met"] = results["app"]["p99_ms"] < TARGET_P99_MS
    print_table(report)
    out = Path(args.json).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if any(not r.get("stored_equals_200", True) or r["errors"] for run in rounds for r in run.values()):
        return 3  # wrong: a 200 without its row, or errors
    return 1 if report.get("p99_target_met") is False or report.get("ratio_target_met") is False else 0


def median_run(runs):
    """The run with the median throughput (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run["webhooks_per_s"])[(len(runs) - 1) // 2]


def print_table(report):
    rows = report["results"]
    bare = rows.get("bare", {}).get("webhooks_per_s")
    if report["settings"]["repeat"] > 1:
        print(f"\n(median run of {report['settings']['repeat']} rounds per target)")
    print()
    print(f"{'target':<13} {'webhooks/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} "
          f"{'vs bare':>7} {'srv cpu ms/req':>14} {'db cpu ms/req':>13} {'other cores':>11}")
    for name, r in rows.items():
        ratio = f"{report['ratios_vs_bare'].get(name, 1.0):.3f}" if bare else "-"
        print(f"{name:<13} {r['webhooks_per_s']:>10.1f} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['max_ms']:>8.2f} {r['errors']:>6} {ratio:>7} {r['server_cpu_ms_per_req']:>14.3f} "
              f"{r['mariadb_cpu_ms_per_req']:>13.3f} {r['other_processes_cores']:>11.2f}")
    print("(srv cpu: gunicorn master+workers CPU per request, background jobs included; other cores: CPU used by "
          "processes outside this bench during the run)")
    for name, ratios in report.get("ratio_rounds", {}).items():
        if len(ratios) > 1:
            print(f"{name}/bare per round: {' '.join(f'{r:.3f}' for r in ratios)} -> median "
                  f"{report['ratios_vs_bare'][name]:.3f}")
    if "ratio_app_bare" in report:
        mark = "ok" if report["ratio_target_met"] else "MISSED"
        print(f"\nratio app/bare throughput: {report['ratio_app_bare']:.3f} (target >= {TARGET_RATIO}: {mark})")
    if "app" in rows:
        mark = "ok" if report["p99_target_met"] else "MISSED"
        print(f"app p99: {rows['app']['p99_ms']:.2f} ms (target < {TARGET_P99_MS:.0f} ms: {mark})")
    for name, a in rows.items():
        if "messages_stored" not in a:
            continue
        print(f"{name}: stored {a['messages_stored']} inbound Message rows for {a['answered_200']} answered 200 "
              f"({a['sent']} sent incl. warm-up) -> {'equal' if a['stored_equals_200'] else 'MISMATCH'}; "
              f"{a['webhook_events']} webhook_events, {a['chats']} chats, {a['bot_replies_stored']} bot replies")
        per = a["db_per_request_during_load"]
        print(f"{name}: MariaDB per webhook during load: {per['Questions']:.1f} statements "
              f"({per['Com_select']:.1f} select, {per['Com_insert']:.1f} insert, {per['Com_update']:.1f} update, "
              f"{per['Com_commit']:.1f} commit, {per['Com_rollback']:.1f} rollback, {per['Com_savepoint']:.1f} "
              f"savepoint), {per['Innodb_data_fsyncs']:.2f} fsyncs")
        if "drain_seconds" in a:
            drain = f"{a['drain_seconds']} s" if a["drain_seconds"] is not None else "TIMEOUT"
            per = a["db_per_request_incl_drain"]
            print(f"{name}: background work: {a['journal_pending_at_load_end']} journaled updates not yet stored and "
                  f"{a['unprocessed_at_load_end']} stored messages not yet through the flow when load stopped, "
                  f"all done in {drain} ({a['unprocessed_after']} left); per webhook incl. drain: "
                  f"{per['Questions']:.1f} statements, {per['Com_commit']:.1f} commits, "
                  f"{a['server_cpu_ms_per_req_incl_drain']:.1f} ms server CPU")
            if a.get("end_to_end_replies_per_second") is not None:
                print(f"{name}: end to end: {a['bot_replies_sent']} bot replies handed to the transport in "
                      f"{a['end_to_end_seconds']} s from the first webhook: "
                      f"{a['end_to_end_replies_per_second']} replies/s")
    for name, r in rows.items():
        if r["error_samples"]:
            print(f"{name} errors, e.g.: {'; '.join(r['error_samples'])}")


if __name__ == "__main__":
    sys.exit(main())
