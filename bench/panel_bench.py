"""The agents' panel on a big database: 100,000 chats and 1,000,000 messages on MariaDB.

    .venv/bin/python bench/panel_bench.py [--reuse] [--requests 100] [--chats 100000] [--messages 1000000]

1. Creates `whatsapp_ia_panel_bench` (never `test`), migrates it (`flask db upgrade`) and bulk-loads it with
   LOAD DATA LOCAL INFILE: chats with a last message and a preview, each attached to one of 5 roles, and
   messages in and out spread over them (the first 100 chats have long histories, ~1,000 messages each;
   the rest ~9 each), ordered in time like real traffic. Takes a few minutes; with --reuse an already
   loaded database (same counts) is kept as is.
2. Through the real app (Flask test client, production config, one process, no HTTP server), signs in
   as an admin and as an agent who has one role (so sees 1 chat in 5), and requests each page
   --requests times: the chat list `/` and `/api/chats`, a long conversation `/chats/<id>` and
   `/api/chats/<id>/mensajes`, and the next page of the list (`/api/chats?antes=...`); a text search
   `/api/chats?q=...` is measured too, for information (no target).
3. Prints p50/p90/p99 per page and user (and the app's own CPU per request, p50: on a shared machine the
   wall figures include waiting for a core), and checks the answers (200, 50 chats, 50 messages, the agent
   only gets chats of their role). Writes bench/results/panel.json.

Target (issue 4): chat list and conversation page each under 100 ms p50. Exit 0 met, 1 missed, 3 wrong answers.
"""
import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

from webhook_bench import RESULTS, percentile  # noqa: E402

DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/whatsapp_ia_panel_bench?charset=utf8mb4"
TARGET_P50_MS = 100.0
ROLES = ("ventas", "soporte", "cobranza", "postventa", "mayoristas")
ADMIN = ("panel_admin", "clave-admin-bench-1")
AGENT = ("panel_agente", "clave-agente-bench-1")
LONG_CHATS = 100
WORDS = ("hola buenas tardes quisiera saber precio del meson de granito para mi cocina envio a domicilio "
         "gracias por la informacion tienen disponible color negro blanco cuanto tarda la instalacion").split()
NAMES = ("María López", "José Pérez", "Ana Gómez", "Luis Rodríguez", "Carmen Díaz", "Jorge Torres", "Rosa Ruiz")


def engine_for(url, **kwargs):
    from sqlalchemy import create_engine
    return create_engine(url, **kwargs)


def counts(url):
    from sqlalchemy import text
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return {"chats": connection.scalar(text("SELECT COUNT(*) FROM chats")),
                    "messages": connection.scalar(text("SELECT COUNT(*) FROM messages"))}
    except Exception:
        return {"chats": 0, "messages": 0}
    finally:
        engine.dispose()


def tsv(value):
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def load_infile(connection, path, table, columns):
    cursor = connection.cursor()
    cursor.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} CHARACTER SET utf8mb4 "
                   f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({', '.join(columns)})")
    connection.commit()
    cursor.close()


def bulk_load(url, n_chats, n_messages):
    """Empty the bench tables and fill them; returns seconds spent."""
    import pymysql
    from sqlalchemy.engine import make_url
    started = time.time()
    u = make_url(url)
    connection = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                                 database=u.database, charset="utf8mb4", local_infile=True, autocommit=False)
    cursor = connection.cursor()
    cursor.execute("SET FOREIGN_KEY_CHECKS=0")
    cursor.execute("SET UNIQUE_CHECKS=0")
    for table in ("message_status_events", "messages", "chat_roles", "chat_leases", "chats", "user_roles", "users",
                  "roles", "webhook_events"):
        cursor.execute(f"TRUNCATE TABLE {table}")
    connection.commit()
    for i, name in enumerate(ROLES, start=1):
        cursor.execute("INSERT INTO roles (id, name, keywords, created_at) VALUES (%s, %s, %s, NOW())",
                       (i, name, name))
    connection.commit()

    # messages per chat: LONG_CHATS long histories, the rest share what is left
    long_each = min(1000, n_messages // (4 * LONG_CHATS)) if n_chats > LONG_CHATS else n_messages // n_chats
    per_chat = [long_each] * min(LONG_CHATS, n_chats)
    rest_chats = n_chats - len(per_chat)
    left = n_messages - sum(per_chat)
    if rest_chats:
        base, extra = divmod(left, rest_chats)
        per_chat += [base + (1 if i < extra else 0) for i in range(rest_chats)]
    else:
        per_chat[0] += left
    rng = random.Random(42)
    start = datetime(2026, 1, 1)
    span = 300 * 24 * 3600  # ten months of traffic
    # every message gets a time; a chat's messages are spread over the span, ids follow time like real traffic
    events = []
    for chat_index, count in enumerate(per_chat):
        first = rng.randrange(0, span - count * 60 - 1)
        for k in range(count):
            events.append((first + k * 60 + rng.randrange(0, 50), chat_index))
    events.sort()
    tmp = Path(tempfile.mkdtemp(prefix="panel_bench_"))
    msg_path = tmp / "messages.tsv"
    last = {}
    columns = ("id", "chat_id", "wamid", "direction", "sender", "type", "text", "status", "attempts", "processed_at",
               "sent_at", "created_at", "updated_at", "step")
    with open(msg_path, "w", encoding="utf-8") as out:
        for message_id, (offset, chat_index) in enumerate(events, start=1):
            at = start + timedelta(seconds=offset)
            inbound = message_id % 2 == 1
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
            row = (message_id, chat_index + 1, f"wamid.bench{message_id:09d}" if inbound else f"wamid.out{message_id:09d}",
                   "in" if inbound else "out", "customer" if inbound else "bot", "text", text,
                   "received" if inbound else "read", 0 if inbound else 1, at, at, at, at, "inicio")
            out.write("\t".join(tsv(v) for v in row) + "\n")
            last[chat_index] = (at, text, at if inbound else last.get(chat_index, (None, None, None))[2])
    chat_path = tmp / "chats.tsv"
    roles_path = tmp / "chat_roles.tsv"
    with open(chat_path, "w", encoding="utf-8") as chats_out, open(roles_path, "w") as roles_out:
        for chat_index in range(n_chats):
            at, text, inbound_at = last.get(chat_index, (None, None, None))
            state = ("bot", "bot", "bot", "human", "closed")[chat_index % 5]
            row = (chat_index + 1, f"569{10000000 + chat_index:08d}", None if chat_index % 7 else f"Cliente {chat_index}",
                   NAMES[chat_index % len(NAMES)], "inicio", state, at, inbound_at, at, (text or "")[:120],
                   chat_index % 4, start)
            chats_out.write("\t".join(tsv(v) for v in row) + "\n")
            roles_out.write(f"{chat_index + 1}\t{chat_index % len(ROLES) + 1}\n")
    load_infile(connection, chat_path, "chats", ("id", "numero", "alias", "profile_name", "step", "state",
                                                  "last_activity_at", "last_inbound_at", "last_message_at",
                                                  "last_message_preview", "unread_count", "created_at"))
    load_infile(connection, roles_path, "chat_roles", ("chat_id", "role_id"))
    cursor.execute("INSERT INTO chat_leases (chat_id) SELECT id FROM chats")
    connection.commit()
    print(f"  chats loaded ({time.time() - started:.0f} s); loading {len(events)} messages...", flush=True)
    load_infile(connection, msg_path, "messages", columns)
    cursor.execute("SET UNIQUE_CHECKS=1")
    cursor.execute("SET FOREIGN_KEY_CHECKS=1")
    cursor.execute("ANALYZE TABLE chats, messages, chat_roles")
    cursor.fetchall()
    connection.close()
    for path in (msg_path, chat_path, roles_path):
        path.unlink()
    tmp.rmdir()
    return time.time() - started


def csrf_login(client, username, password):
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    if not match:
        raise SystemExit("no CSRF token on /login")
    answer = client.post("/login", data={"username": username, "password": password, "csrf_token": match.group(1)})
    if answer.status_code != 302:
        raise SystemExit(f"login of {username} failed: HTTP {answer.status_code}")


def measure(client, path, requests, check):
    """Latencies (s) of `requests` GETs of `path` after 3 warm-up ones; `check(response)` -> problem or None."""
    problems = []
    for _ in range(3):
        client.get(path)
    latencies, cpu = [], []
    for _ in range(requests):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(path)
        body = response.get_data()
        latencies.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        problem = check(response, body)
        if problem and len(problems) < 3:
            problems.append(problem)
    return sorted(latencies), sorted(cpu), problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("PANEL_BENCH_DATABASE_URL", DEFAULT_DB_URL))
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database with these counts")
    parser.add_argument("--json", default=str(RESULTS / "panel.json"))
    args = parser.parse_args(argv)
    if args.db_url.rstrip("/").endswith("/test") or "/test?" in args.db_url:
        parser.error("never the `test` database (the test suite drops it)")

    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    import subprocess
    url = make_url(args.db_url)
    server = engine_for(url.set(database=""), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{url.database}` CHARACTER SET utf8mb4 "
                                "COLLATE utf8mb4_unicode_ci"))
    server.dispose()
    env = {"DATABASE_URL": args.db_url, "SECRET_KEY": "bench-secret-key-not-the-default", "APP_ENV": "production",
           "WHATSAPP_TRANSPORT": "sandbox", "META_APP_SECRET": "panel-bench", "SESSION_COOKIE_SECURE": "0"}
    os.environ.update(env)
    for name in ("META_TOKEN", "JOBS_BACKEND", "REDIS_URL"):
        os.environ.pop(name, None)
    done = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "db", "upgrade"], cwd=ROOT,
                          env=os.environ, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"flask db upgrade failed:\n{done.stdout}\n{done.stderr}")
    have = counts(args.db_url)
    load_seconds = None
    if args.reuse and have == {"chats": args.chats, "messages": args.messages}:
        print(f"panel bench: reusing {args.db_url.split('@')[-1]} ({have['chats']} chats, {have['messages']} messages)")
    else:
        print(f"panel bench: loading {args.chats} chats and {args.messages} messages into "
              f"{args.db_url.split('@')[-1]} (a few minutes)...", flush=True)
        load_seconds = bulk_load(args.db_url, args.chats, args.messages)
        print(f"  loaded in {load_seconds:.0f} s", flush=True)

    import logging
    from app import create_app
    from extensions import db
    from models import User
    from services.auth import create_user
    app = create_app()
    app.config.update(SESSION_COOKIE_SECURE=False, RATELIMIT_ENABLED=False)
    logging.getLogger().setLevel(logging.WARNING)
    with app.app_context():
        for (username, password), admin, roles in ((ADMIN, True, ()), (AGENT, False, (ROLES[0],))):
            if db.session.scalar(db.select(User).filter_by(username=username)) is None:
                create_user(username, password, roles, admin)
        agent_role_chats = {row[0] for row in db.session.execute(text(
            "SELECT chat_id FROM chat_roles WHERE role_id = 1 AND chat_id <= :n"), {"n": LONG_CHATS})}
        long_chat = min(agent_role_chats)  # a long history the agent may see too
        other_role_chat = db.session.scalar(text("SELECT chat_id FROM chat_roles WHERE role_id = 2 LIMIT 1"))
        agent_chats = {row[0] for row in db.session.execute(text("SELECT chat_id FROM chat_roles WHERE role_id = 1"))}
        search_word = "Cliente 4242"

    def chats_check(only=None, expect=50):
        def check(response, body):
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            chats = json.loads(body)["chats"]
            if expect is not None and len(chats) != expect:
                return f"{len(chats)} chats, expected {expect}"
            if only is not None and any(chat["id"] not in only for chat in chats):
                return "a chat of another role was listed"
            return None
        return check

    def page_check(response, body):
        return None if response.status_code == 200 and len(body) > 1000 else f"HTTP {response.status_code}"

    def messages_check(response, body):
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        count = len(json.loads(body)["messages"])
        return None if count == 50 else f"{count} messages, expected 50"

    results, problems = {}, []
    for who, (username, password), only in (("admin", ADMIN, None), ("agent", AGENT, agent_chats)):
        client = app.test_client()
        csrf_login(client, username, password)
        first = json.loads(client.get("/api/chats").get_data())["chats"]
        cursor = f"{first[-1]['last_message_at']}|{first[-1]['id']}"
        pages = [
            ("list /", "/", page_check, True),
            ("list /api/chats", "/api/chats", chats_check(only), True),
            ("list page 2 /api/chats?antes=", f"/api/chats?antes={cursor}", chats_check(only), True),
            ("conversation /chats/<id>", f"/chats/{long_chat}", page_check, True),
            ("conversation /api/chats/<id>/mensajes", f"/api/chats/{long_chat}/mensajes", messages_check, True),
            ("search /api/chats?q= (info)", f"/api/chats?q={search_word}", chats_check(only, expect=None), False),
        ]
        for name, path, check, target in pages:
            latencies, cpu, found = measure(client, path, args.requests if target else 3, check)
            ms = lambda v: round(v * 1000, 1)  # noqa: E731
            results[f"{who} {name}"] = {"path": path, "requests": len(latencies), "target": target,
                                        "p50_ms": ms(percentile(latencies, 0.5)),
                                        "p90_ms": ms(percentile(latencies, 0.9)),
                                        "p99_ms": ms(percentile(latencies, 0.99)),
                                        "cpu_p50_ms": ms(percentile(cpu, 0.5)), "problems": found}
            problems += [f"{who} {name}: {p}" for p in found]
            r = results[f"{who} {name}"]
            print(f"  {who:<6} {name:<40} p50 {r['p50_ms']:7.1f} ms  p90 {r['p90_ms']:7.1f} ms  "
                  f"p99 {r['p99_ms']:7.1f} ms  app CPU p50 {r['cpu_p50_ms']:6.1f} ms  ({r['requests']} requests){'  ' + '; '.join(found) if found else ''}",
                  flush=True)
        if who == "agent":
            denied = client.get(f"/api/chats/{other_role_chat}/mensajes").status_code
            if denied not in (403, 404):
                problems.append(f"agent read another role's chat: HTTP {denied}")
    missed = [name for name, r in results.items() if r["target"] and r["p50_ms"] >= TARGET_P50_MS]
    verdict = "WRONG ANSWERS" if problems else ("target missed: " + ", ".join(missed) if missed else
                                                f"target met (every page p50 < {TARGET_P50_MS:.0f} ms)")
    report = {"db_url": args.db_url, "chats": args.chats, "messages": args.messages, "load_seconds": load_seconds,
              "requests": args.requests, "pages": results, "problems": problems, "verdict": verdict}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"verdict: {verdict}; written {args.json}")
    return 3 if problems else (1 if missed else 0)


if __name__ == "__main__":
    sys.exit(main())
