"""A worker process for the cross-process tests: `python -m tests.concurrency_worker MODE CONFIG_JSON`.

It builds the app on the database it is given, prints "ready", waits for "go" on stdin, does its
part, and prints one JSON line with what it did. Modes:

- receive: `threads` threads each accept every body of `bodies` into the intake journal and drain it
  themselves, all released together (this process's job threads drain too); then waits for the jobs.
- drain: drains the intake journal (the bot answers in the drain) and runs `process_chat` for each of
  `chat_ids` in a loop, handling with a recorder that appends to `record_path`, until told "stop" and
  nothing of those chats is pending.
"""
import json
import os
import sys
import threading
import time

from sqlalchemy import func, select

from app import create_app
from config import test_config
from extensions import db
from models import Message
from services import intake
from services.meta_payload import parse_update
from services.pipeline import process_chat


class Recorder:
    """An inbound handler that notes each message it handles (which, where, from when to when)."""

    def __init__(self, delay: float = 0.004, path: str | None = None):
        self.delay, self.path = delay, path
        self.records = []
        self.lock = threading.Lock()

    def __call__(self, message) -> None:
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the host
        time.sleep(self.delay)
        record = {"id": message.id, "chat_id": message.chat_id, "text": message.text, "pid": os.getpid(),
                  "thread": threading.get_ident(), "start": start, "end": time.monotonic()}
        if self.path:
            # One small O_APPEND write per record: lines from several processes never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (json.dumps(record) + "\n").encode())
            finally:
                os.close(fd)
        with self.lock:
            self.records.append(record)


def build(config: dict):
    return create_app(test_config(SQLALCHEMY_DATABASE_URI=config["db_url"], MEDIA_ROOT=config["media_root"],
                                  JOB_THREADS=4, JOB_RETRY_DELAYS=(0.05, 0.1, 0.2)))


def receive(app, config: dict, stop: threading.Event) -> dict:
    bodies, count = config["bodies"], config["threads"]
    barrier = threading.Barrier(count)
    stored, duplicates, errors, lock = [], [], [], threading.Lock()

    def run():
        barrier.wait(30)
        for raw in bodies:
            try:
                with app.app_context():
                    intake.accept("meta", parse_update(json.loads(raw)), raw)
                    result = intake.drain()
                    wamids = list(db.session.scalars(select(Message.wamid).where(Message.id.in_(result.stored))))
            except Exception as error:  # noqa: BLE001 - reported to the test
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                stored.extend(wamids)
                duplicates.append(result.duplicates)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    idle = app.extensions["jobs"].wait_idle(30)
    return {"stored": stored, "duplicates": sum(duplicates), "errors": errors, "idle": idle}


def drain(app, config: dict, stop: threading.Event) -> dict:
    chat_ids = config["chat_ids"]
    app.extensions["inbound_handler"] = recorder = Recorder(config["delay"], config["record_path"])
    errors, passes = [], 0
    while True:
        stopping = stop.is_set()
        handled = 0
        try:
            with app.app_context():
                handled += intake.drain().answered
        except Exception as error:  # noqa: BLE001 - reported to the test
            errors.append(f"{type(error).__name__}: {error}")
        for chat_id in chat_ids:
            try:
                with app.app_context():
                    handled += process_chat(chat_id)
            except Exception as error:  # noqa: BLE001 - reported to the test
                errors.append(f"{type(error).__name__}: {error}")
        passes += 1
        if stopping:
            with app.app_context():
                pending = db.session.scalar(select(func.count()).select_from(Message).where(
                    Message.chat_id.in_(chat_ids), Message.direction == "in", Message.processed_at.is_(None)))
            if not pending:
                break
        if not handled:
            time.sleep(0.002)
    return {"handled": len(recorder.records), "passes": passes, "errors": errors}


def main() -> None:
    mode, config = sys.argv[1], json.loads(sys.argv[2])
    app = build(config)
    go, stop = threading.Event(), threading.Event()

    def listen():
        for line in sys.stdin:
            (go if line.strip() == "go" else stop if line.strip() == "stop" else threading.Event()).set()
        stop.set()

    threading.Thread(target=listen, daemon=True).start()
    print("ready", flush=True)
    if not go.wait(60):
        sys.exit("no go")
    started = time.monotonic()
    report = {"receive": receive, "drain": drain}[mode](app, config, stop)
    report.update(pid=os.getpid(), seconds=round(time.monotonic() - started, 3))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
