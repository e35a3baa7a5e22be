"""Real RQ workers for the tests: `flask --app app worker` processes (through tests.job_worker, so the test
tasks are known too) on Redis db 12, which only the job tests use and flush."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from redis import Redis

from tests.audio import wait_until

REDIS_URL = "redis://127.0.0.1:6379/12"
ROOT = Path(__file__).resolve().parent.parent


def worker_env(db_url: str, media_root, graph_url: str, **settings) -> dict:
    """The environment of a worker process: the test database, media folder and fake Graph, and `settings`."""
    return {**os.environ, "DATABASE_URL": db_url, "JOBS_BACKEND": "rq", "REDIS_URL": REDIS_URL,
            "MEDIA_ROOT": str(media_root), "GRAPH_API_URL": graph_url, "META_TOKEN": "test-token",
            "PHONE_NUMBER_ID": "1122334455667", "SECRET_KEY": "test-secret", "APP_ENV": "development",
            "META_APP_SECRET": "app-secret", "VERIFY_TOKEN": "verify-me", "PYTHONPATH": str(ROOT),
            **{name: str(value) for name, value in settings.items()}}


class Workers:
    """`flask --app app worker` processes, each in its own process group (so SIGKILL takes its forked job too)."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs, self.processes = env, logs, []

    def start(self, queues: str | None = None) -> subprocess.Popen:
        log = (self.logs / f"worker{len(self.processes)}.log").open("wb")
        command = [sys.executable, "-m", "tests.job_worker", *(["--queues", queues] if queues else [])]
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        redis = Redis.from_url(REDIS_URL)
        wait_until(lambda: any(int(redis.hget(key, "pid") or 0) == process.pid
                               for key in redis.smembers("rq:workers")), 60, "the worker to register")
        return process

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("worker*.log")))
