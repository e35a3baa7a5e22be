"""The job API on both backends (threads in this process, RQ on the real Redis with separate worker processes):
the same tests run on each. RQ uses Redis db 14 only, and a worker killed mid-job (SIGKILL) is covered."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from services import transcription
from services.jobs import PermanentJobError, enqueue, enqueue_in, enqueue_many
from tests.audio import NO, WELCOME, VoiceCustomer, korean_model_path, seed_closed_menu, voice_note, wait_until

REDIS_URL = "redis://127.0.0.1:6379/14"
ROOT = Path(__file__).resolve().parent.parent


# --- tasks the jobs run (importable by the RQ worker: plain ids and paths as arguments) -------------------------

def _attempt(directory: str, name: str) -> int:
    counter = Path(directory) / f"{name}.attempts"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    return attempt


def record(directory: str, value: str) -> None:
    with (Path(directory) / "record.txt").open("a") as handle:
        handle.write(value + "\n")


def flaky(directory: str, failures: int) -> None:
    attempt = _attempt(directory, "flaky")
    if attempt <= failures:
        raise RuntimeError(f"fallo pasajero {attempt}")
    (Path(directory) / "flaky.done").write_text(str(attempt))


def always_fails(directory: str) -> None:
    _attempt(directory, "always")
    raise RuntimeError("falla siempre")


def stops(directory: str) -> None:
    _attempt(directory, "stops")
    raise PermanentJobError("no tiene arreglo")


def slow(directory: str) -> None:
    """First attempt hangs (the test kills its worker); later attempts finish at once."""
    attempt = _attempt(directory, "slow")
    (Path(directory) / f"slow.started.{attempt}").write_text(str(os.getpid()))
    if attempt == 1:
        time.sleep(120)
    (Path(directory) / "slow.done").write_text(str(attempt))


def _write_gave_up(directory: str, *rest) -> None:
    *_, reason = rest
    (Path(directory) / "gave_up.txt").write_text(reason)


always_fails.gave_up = _write_gave_up
slow.gave_up = _write_gave_up


# --- backends ---------------------------------------------------------------------------------------------------

class Workers:
    """`flask --app app worker` processes, each in its own process group (so SIGKILL takes its forked job too)."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs, self.processes = env, logs, []

    def start(self) -> subprocess.Popen:
        log = (self.logs / f"worker{len(self.processes)}.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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


class Backend:
    def __init__(self, name, app, workers=None):
        self.name, self.app, self.workers = name, app, workers

    def enqueue(self, task, *args, **options):
        with self.app.app_context():
            return enqueue(task, *args, **options)

    def enqueue_in(self, delay, task, *args, **options):
        with self.app.app_context():
            return enqueue_in(delay, task, *args, **options)

    def enqueue_many(self, calls, **options):
        with self.app.app_context():
            return enqueue_many(calls, **options)


@pytest.fixture
def redis_db14():
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()  # db 14 only: this suite's
    yield redis
    redis.flushdb()


def _settings(graph, media_root):
    return {"WHATSAPP_TRANSPORT": "cloud", "VOSK_MODEL_PATH": str(korean_model_path()),
            "SEND_RETRY_DELAYS": (0.05, 0.1, 0.2, 0.3, 0.5)}


@pytest.fixture
def rq_backend(make_app, db_url, media_root, graph, tmp_path, redis_db14):
    settings = _settings(graph, media_root)
    app = make_app(JOBS_BACKEND="rq", REDIS_URL=REDIS_URL, **settings)
    env = {**os.environ, "DATABASE_URL": db_url, "JOBS_BACKEND": "rq", "REDIS_URL": REDIS_URL,
           "MEDIA_ROOT": str(media_root), "GRAPH_API_URL": graph.url, "META_TOKEN": "test-token",
           "PHONE_NUMBER_ID": "1122334455667", "WHATSAPP_TRANSPORT": "cloud", "SECRET_KEY": "test-secret",
           "APP_ENV": "development", "META_APP_SECRET": "app-secret", "VERIFY_TOKEN": "verify-me",
           "VOSK_MODEL_PATH": settings["VOSK_MODEL_PATH"], "PYTHONPATH": str(ROOT)}
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    workers = Workers(env, logs)
    yield Backend("rq", app, workers)
    workers.stop_all()
    print(workers.output())  # shown by pytest when the test failed


@pytest.fixture(params=["thread", "rq"])
def backend(request, make_app, graph, media_root):
    transcription.load.reset()
    if request.param == "thread":
        yield Backend("thread", make_app(**_settings(graph, media_root)))
        return
    rq = request.getfixturevalue("rq_backend")
    rq.workers.start()
    yield rq


@pytest.fixture
def work(tmp_path):
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


# --- the same tests on both backends ------------------------------------------------------------------------

def test_a_job_runs_with_its_arguments(backend, work):
    backend.enqueue("tests.test_jobs.record", str(work), "uno")
    backend.enqueue("tests.test_jobs.record", str(work), "dos")
    wait_until(lambda: (read(work / "record.txt") or "").count("\n") == 2, 30, "both jobs")
    assert sorted(read(work / "record.txt").split()) == ["dos", "uno"]


def test_jobs_queued_together_each_run_and_keep_their_retries(backend, work):
    ids = backend.enqueue_many([("tests.test_jobs.record", (str(work), "uno")),
                                ("tests.test_jobs.flaky", (str(work), 1)),
                                ("tests.test_jobs.record", (str(work), "tres"))], retries=2)
    assert len(set(ids)) == 3
    wait_until(lambda: (read(work / "record.txt") or "").count("\n") == 2 and read(work / "flaky.done"), 60,
               "the three jobs")
    assert sorted(read(work / "record.txt").split()) == ["tres", "uno"]
    assert read(work / "flaky.done") == "2"  # failed once, tried again
    assert backend.enqueue_many([]) == []


def test_a_failing_job_is_retried_with_backoff_until_it_works(backend, work):
    started = time.monotonic()
    backend.enqueue("tests.test_jobs.flaky", str(work), 2, retries=3)
    wait_until(lambda: read(work / "flaky.done"), 60, "the third attempt")
    assert read(work / "flaky.done") == "3" and read(work / "flaky.attempts") == "3"
    if backend.name == "rq":
        assert time.monotonic() - started >= 2, "RQ waits at least 1 s between attempts"


def test_a_job_failing_for_good_records_its_reason(backend, work):
    backend.enqueue("tests.test_jobs.always_fails", str(work), retries=2)
    reason = wait_until(lambda: read(work / "gave_up.txt"), 60, "the job to give up")
    assert reason.startswith("RuntimeError") and "falla siempre" in reason
    assert read(work / "always.attempts") == "3"


def test_a_permanent_error_is_not_retried(backend, work):
    backend.enqueue("tests.test_jobs.stops", str(work), retries=3)
    backend.enqueue_in(0.5, "tests.test_jobs.record", str(work), "después")
    wait_until(lambda: read(work / "record.txt"), 30, "the delayed job")
    time.sleep(1.5)
    assert read(work / "stops.attempts") == "1"


def test_voice_note_through_the_closed_menu_on_each_backend(backend, graph, tmp_path):
    app = backend.app
    with app.app_context():
        rules = seed_closed_menu()
    customer = VoiceCustomer(app, graph)
    customer.handled(customer.says("hola"))

    note = customer.handled(customer.sends_note(voice_note("아니요", tmp_path, "no")), timeout=120)

    assert (note.transcription_status, note.transcription, note.rule_id) == ("transcrito", "아니요", rules["no"])
    customer.expect_replies([WELCOME, NO])


def test_free_voice_note_on_each_backend(backend, graph, tmp_path):
    app = backend.app
    with app.app_context():
        rules = seed_closed_menu()
    customer = VoiceCustomer(app, graph)

    note = customer.handled(customer.sends_note(voice_note("안녕하세요 주문을 확인하고 싶어요", tmp_path, "s")),
                            timeout=120)

    assert note.transcription_status == "transcrito" and note.transcription.strip()
    assert note.rule_id == rules["welcome"]
    customer.expect_replies([WELCOME])


# --- RQ only: a worker killed in the middle of a job -----------------------------------------------------------

def test_rq_job_of_a_killed_worker_is_picked_up_again(rq_backend, work):
    first = rq_backend.workers.start()
    rq_backend.enqueue("tests.test_jobs.slow", str(work), retries=2)
    wait_until(lambda: read(work / "slow.started.1"), 30, "the job to start")

    rq_backend.workers.kill(first)  # SIGKILL to the worker and its forked job
    assert read(work / "slow.done") is None
    rq_backend.workers.start()  # on start it finds the job its dead predecessor left started

    assert wait_until(lambda: read(work / "slow.done"), 60, "the job to run again") == "2"
    assert read(work / "gave_up.txt") is None
    assert "1 trabajos abandonados por un worker caído recuperados" in rq_backend.workers.output()


def test_rq_job_of_a_killed_worker_without_retries_is_failed_with_its_reason(rq_backend, work, redis_db14):
    from rq import Queue
    from rq.job import Job

    first = rq_backend.workers.start()
    job_id = rq_backend.enqueue("tests.test_jobs.slow", str(work), retries=0)
    wait_until(lambda: read(work / "slow.started.1"), 30, "the job to start")

    rq_backend.workers.kill(first)
    rq_backend.workers.start()

    reason = wait_until(lambda: read(work / "gave_up.txt"), 30, "the job to be failed")
    assert "murió durante el trabajo" in reason
    job = Job.fetch(job_id, connection=redis_db14)
    assert job.get_status() == "failed" and "AbandonedJobError" in (job.latest_result().exc_string or "")
    assert job_id in Queue("whatsapp_ia", connection=redis_db14).failed_job_registry.get_job_ids()
    assert read(work / "slow.done") is None


def test_rq_a_live_workers_job_is_left_alone(rq_backend, work):
    rq_backend.workers.start()
    rq_backend.enqueue("tests.test_jobs.slow", str(work), retries=2)
    wait_until(lambda: read(work / "slow.started.1"), 30, "the job to start")

    rq_backend.workers.start()  # a second worker must not steal the first one's running job

    time.sleep(2)
    assert read(work / "slow.started.2") is None and read(work / "slow.done") is None
    assert "0 trabajos abandonados" in rq_backend.workers.output()
