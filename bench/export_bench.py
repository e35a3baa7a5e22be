"""A 100,000-message conversation exported (JSON, CSV) and a range export (CSV, ZIP) with memory staying flat.

    .venv/bin/python bench/export_bench.py [--messages 100000]

1. Creates the database `whatsapp_ia_export_bench` (BENCH_EXPORT_URL to change it), migrates it and, unless it
   already holds them, loads one chat with --messages messages (LOAD DATA LOCAL INFILE), with accents,
   media, transcriptions and sentiment.
2. Streams each export through the real app as an admin, reading the body chunk by chunk, and samples the
   process's resident memory (VmRSS) after the first chunk, every 10% of the way and at the end, plus the
   peak (VmHWM) before and after.
3. Prints the figures and writes bench/results/export.json.

Target (issue): memory flat — RSS at the end within 25 MB of RSS after the first chunk for every export.
Exit 0 target met, 1 missed, 3 wrong results (not every message came out).
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path.insert(0, str(ROOT))

DATABASE = "whatsapp_ia_export_bench"
URL = os.environ.get("BENCH_EXPORT_URL",
                     f"mysql+pymysql://root@127.0.0.1:3306/{DATABASE}?charset=utf8mb4&local_infile=1")
NUMERO = "5491100100000"
ADMIN, PASSWORD = "bench-admin", "clave-del-bench-1"
FLAT_MB = 25


def memory_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, kb = line.split()[:2]
            values[name] = int(kb) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def make_app():
    from app import create_app
    from config import test_config
    return create_app(test_config(SQLALCHEMY_DATABASE_URI=URL, WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False))


def load(app, total: int) -> None:
    import pymysql
    from flask_migrate import upgrade
    from sqlalchemy import text

    from extensions import db
    from models import Chat
    from services.auth import create_user
    connection = pymysql.connect(host="127.0.0.1", user="root", port=3306)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
    connection.close()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for (table,) in conn.execute(text("SHOW TABLES")).all():
                conn.execute(text(f"DROP TABLE `{table}`"))
        upgrade()
        create_user(ADMIN, PASSWORD, (), True)
        chat = Chat(numero=NUMERO, alias="Señora Núñez", state="bot", unread_count=0)
        db.session.add(chat)
        db.session.commit()
        rng, start = random.Random(1), datetime(2025, 3, 1)
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as out:
            for n in range(total):
                at = (start + timedelta(seconds=n * 30)).strftime("%Y-%m-%d %H:%M:%S")
                inbound = n % 2 == 0
                kind = "audio" if inbound and n % 20 == 0 else "text"
                text_value = r"\N" if kind == "audio" else f"¿Cuánto cuesta el mesón {n}? Ñandú, señor, \"sí\""
                row = (chat.id, f"wamid.X{n}", "in" if inbound else "out", "customer" if inbound else "bot", kind,
                       text_value, "received" if inbound else rng.choice(("read", "delivered", "failed")),
                       "precio del mesón de cocina" if kind == "audio" else r"\N",
                       "audio/ogg" if kind == "audio" else r"\N", f"2025/{n}.ogg" if kind == "audio" else r"\N",
                       rng.choice(("positivo", "neutral", "negativo")) if inbound else r"\N", "0.7", 0, at, at)
                out.write("\t".join(map(str, row)) + "\n")
        with db.engine.begin() as conn:
            conn.execute(text(
                f"LOAD DATA LOCAL INFILE '{out.name}' INTO TABLE messages CHARACTER SET utf8mb4 "
                "(chat_id, wamid, direction, sender, type, text, status, transcription, media_mime, media_path, "
                "sentiment_label, sentiment_score, attempts, created_at, updated_at)"))
        os.unlink(out.name)
        db.session.remove()


def count(app) -> int:
    from sqlalchemy import text

    from extensions import db
    with app.app_context():
        try:
            return db.session.scalar(text("SELECT COUNT(*) FROM messages"))
        except Exception:
            return -1
        finally:
            db.session.remove()


def stream(client, path: str, expected_bytes_hint: int) -> dict:
    response = client.get(path, buffered=False)
    assert response.status_code == 200, (path, response.status_code)
    size, samples, started = 0, [], time.perf_counter()
    hwm_before = memory_mb()[1]
    next_mark = 0
    first = None
    body_tail = b""
    for chunk in response.response:
        chunk = chunk.encode() if isinstance(chunk, str) else chunk
        size += len(chunk)
        body_tail = (body_tail + chunk)[-4096:]
        if first is None:
            first = memory_mb()[0]
        if size >= next_mark:
            samples.append(round(memory_mb()[0], 1))
            next_mark += expected_bytes_hint // 10
    response.close()
    rss_end, hwm_after = memory_mb()
    return {"path": path, "mb": round(size / 1e6, 1), "seconds": round(time.perf_counter() - started, 2),
            "rss_first_chunk_mb": round(first, 1), "rss_end_mb": round(rss_end, 1), "rss_samples_mb": samples,
            "peak_before_mb": round(hwm_before, 1), "peak_after_mb": round(hwm_after, 1),
            "growth_mb": round(rss_end - first, 1), "tail": body_tail}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args(argv)
    app = make_app()
    if count(app) != args.messages:
        load(app, args.messages)
    client = app.test_client()
    assert client.post("/login", data={"username": ADMIN, "password": PASSWORD}).status_code == 302
    print(f"RSS before any export: {memory_mb()[0]:.1f} MB", flush=True)
    runs, wrong, missed = [], 0, 0
    for path, hint in ((f"/export/conversation/{NUMERO}", 45_000_000),
                       (f"/export/conversation/{NUMERO}.csv", 30_000_000),
                       ("/export/conversaciones.csv?desde=2025-03-01&hasta=2025-12-31", 30_000_000),
                       ("/export/conversaciones.zip?desde=2025-03-01&hasta=2025-12-31", 3_000_000)):
        result = stream(client, path, hint)
        tail = result.pop("tail")
        if path.endswith(NUMERO) and not tail.rstrip().endswith(b"]}"):
            wrong += 1
        if ".csv" in path and f"wamid.X{args.messages - 1}".encode() not in tail:
            wrong += 1
        flat = result["growth_mb"] <= FLAT_MB
        missed += not flat
        result["flat"] = flat
        runs.append(result)
        print(f"{path}\n  {result['mb']} MB in {result['seconds']} s; RSS first chunk {result['rss_first_chunk_mb']} MB"
              f" → end {result['rss_end_mb']} MB (growth {result['growth_mb']} MB, {'flat' if flat else 'NOT FLAT'});"
              f" peak {result['peak_before_mb']} → {result['peak_after_mb']} MB; samples {result['rss_samples_mb']}",
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export.json").write_text(json.dumps({"messages": args.messages, "runs": runs}, indent=2))
    return 3 if wrong else 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
