"""Running the app for real in tests: an HTTP server in a thread, calls released together,
worker processes on the same database, and checks of what a recording handler saw."""
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

import requests
from werkzeug.serving import make_server

from services.signatures import meta_signature
from tests.concurrency_worker import Recorder  # noqa: F401 - the handler both sides use
from tests.conftest import APP_SECRET

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def serve(app):
    """The app behind werkzeug's threaded server on a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def post_signed(url: str, body: bytes, session=None) -> requests.Response:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, body)}
    return (session or requests).post(f"{url}/webhook", data=body, headers=headers, timeout=60)


def at_once(calls, timeout: float = 60) -> list:
    """Run each callable in its own thread, all released by one barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(index, call):
        try:
            barrier.wait(timeout)
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "concurrent calls did not finish"
    if errors:
        raise errors[0]
    return results


def read_records(path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_chat_handling(records: list[dict], stored: dict[int, list[int]]) -> None:
    """Every stored message handled once; per chat, in id order and never two at a time."""
    counts = Counter(record["id"] for record in records)
    twice = {message_id: n for message_id, n in counts.items() if n > 1}
    assert not twice, f"messages handled more than once: {twice}"
    all_ids = {message_id for ids in stored.values() for message_id in ids}
    assert set(counts) == all_ids, f"not handled: {sorted(all_ids - set(counts))}"
    by_chat = defaultdict(list)
    for record in sorted(records, key=lambda r: r["start"]):
        by_chat[record["chat_id"]].append(record)
    for chat_id, ids in stored.items():
        handled = by_chat[chat_id]
        assert [r["id"] for r in handled] == sorted(ids), f"chat {chat_id} handled out of arrival order"
        for before, after in zip(handled, handled[1:]):
            assert after["start"] >= before["end"], \
                f"chat {chat_id}: message {after['id']} started before {before['id']} ended"


class Workers:
    """Separate Python processes running tests/concurrency_worker.py against one database.

    Each builds the app, says "ready", waits for "go" on stdin, works, and on "stop" (or when done)
    prints one JSON line about what it did.
    """

    def __init__(self, mode: str, config: dict, processes: int, log_dir: Path):
        self.mode, self.config, self.count, self.log_dir = mode, config, processes, Path(log_dir)
        self.procs, self.logs = [], []

    def __enter__(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for index in range(self.count):
            log = open(self.log_dir / f"worker-{self.mode}-{index}.log", "w+")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "tests.concurrency_worker", self.mode, json.dumps(self.config)],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True))
        try:
            for index, proc in enumerate(self.procs):
                ready, _, _ = select.select([proc.stdout], [], [], 60)
                line = proc.stdout.readline().strip() if ready else "(nothing in 60 s)"
                assert line == "ready", f"worker {index} did not start: {line!r}\n{self.stderr(index)}"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for log in self.logs:
            log.close()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stderr(self, index: int) -> str:
        log = self.logs[index]
        log.flush()
        log.seek(0)
        return log.read()[-4000:]

    def send(self, word: str) -> None:
        for proc in self.procs:
            try:
                proc.stdin.write(word + "\n")
                proc.stdin.flush()
            except BrokenPipeError:  # done already: results() reads its report
                pass

    def go(self) -> None:
        self.send("go")

    def results(self, timeout: float = 60) -> list[dict]:
        """Tell them to stop and collect each one's report."""
        self.send("stop")
        reports = []
        for index, proc in enumerate(self.procs):
            out, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"worker {index} exited {proc.returncode}\n{self.stderr(index)}"
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
