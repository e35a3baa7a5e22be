"""The job API on both backends (threads in this process, RQ on the real Redis with separate worker processes):
the same tests run on each. RQ uses Redis db 12 only, and a worker killed mid-job (SIGKILL) is covered. The
tasks are registered by name in tests.job_tasks; a job queued under a task's former name still runs."""
import time
from pathlib import Path

import pytest
from redis import Redis

from services import transcription
from services.jobs import (LEGACY_QUEUE, MESSAGES, OUTSIDE, UnknownTask, enqueue, enqueue_in, enqueue_many,
                           lookup, registered, rq_job_failed, run_task)
from tests.audio import NO, WELCOME, VoiceCustomer, korean_model_path, seed_closed_menu, voice_note, wait_until
import tests.job_tasks  # noqa: F401 (registers the test tasks)
from tests.rq_workers import REDIS_URL, ROOT, Workers, worker_env


# --- backends ---------------------------------------------------------------------------------------------------

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
def redis_db12():
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()  # db 12 only: the job tests'
    yield redis
    redis.flushdb()


def _settings(graph, media_root):
    return {"WHATSAPP_TRANSPORT": "cloud", "VOSK_MODEL_PATH": str(korean_model_path()),
            "SEND_RETRY_DELAYS": (0.05, 0.1, 0.2, 0.3, 0.5)}


@pytest.fixture
def rq_backend(make_app, db_url, media_root, graph, tmp_path, redis_db12):
    settings = _settings(graph, media_root)
    app = make_app(JOBS_BACKEND="rq", REDIS_URL=REDIS_URL, **settings)
    env = worker_env(db_url, media_root, graph.url, WHATSAPP_TRANSPORT="cloud",
                     VOSK_MODEL_PATH=settings["VOSK_MODEL_PATH"])
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
    backend.enqueue("tests.record", str(work), "uno")
    backend.enqueue("tests.record", str(work), "dos")
    wait_until(lambda: (read(work / "record.txt") or "").count("\n") == 2, 30, "both jobs")
    assert sorted(read(work / "record.txt").split()) == ["dos", "uno"]


def test_jobs_queued_together_each_run_and_keep_their_retries(backend, work):
    ids = backend.enqueue_many([("tests.record", (str(work), "uno")),
                                ("tests.flaky", (str(work), 1)),
                                ("tests.record", (str(work), "tres"))], retries=2)
    assert len(set(ids)) == 3
    wait_until(lambda: (read(work / "record.txt") or "").count("\n") == 2 and read(work / "flaky.done"), 60,
               "the three jobs")
    assert sorted(read(work / "record.txt").split()) == ["tres", "uno"]
    assert read(work / "flaky.done") == "2"  # failed once, tried again
    assert backend.enqueue_many([]) == []


def test_a_failing_job_is_retried_with_backoff_until_it_works(backend, work):
    started = time.monotonic()
    backend.enqueue("tests.flaky", str(work), 2, retries=3)
    wait_until(lambda: read(work / "flaky.done"), 60, "the third attempt")
    assert read(work / "flaky.done") == "3" and read(work / "flaky.attempts") == "3"
    if backend.name == "rq":
        assert time.monotonic() - started >= 2, "RQ waits at least 1 s between attempts"


def test_a_job_failing_for_good_records_its_reason(backend, work):
    backend.enqueue("tests.always_fails", str(work), retries=2)
    reason = wait_until(lambda: read(work / "gave_up.txt"), 60, "the job to give up")
    assert reason.startswith("RuntimeError") and "falla siempre" in reason
    assert read(work / "always.attempts") == "3"


def test_a_permanent_error_is_not_retried(backend, work):
    backend.enqueue("tests.stops", str(work), retries=3)
    backend.enqueue_in(0.5, "tests.record", str(work), "después")
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
    rq_backend.enqueue("tests.slow", str(work), retries=2)
    wait_until(lambda: read(work / "slow.started.1"), 30, "the job to start")

    rq_backend.workers.kill(first)  # SIGKILL to the worker and its forked job
    assert read(work / "slow.done") is None
    rq_backend.workers.start()  # on start it finds the job its dead predecessor left started

    assert wait_until(lambda: read(work / "slow.done"), 60, "the job to run again") == "2"
    assert read(work / "gave_up.txt") is None
    assert "1 trabajos abandonados por un worker caído recuperados" in rq_backend.workers.output()


def test_rq_job_of_a_killed_worker_without_retries_is_failed_with_its_reason(rq_backend, work, redis_db12):
    from rq import Queue
    from rq.job import Job

    first = rq_backend.workers.start()
    job_id = rq_backend.enqueue("tests.slow", str(work), retries=0)
    wait_until(lambda: read(work / "slow.started.1"), 30, "the job to start")

    rq_backend.workers.kill(first)
    rq_backend.workers.start()

    reason = wait_until(lambda: read(work / "gave_up.txt"), 30, "the job to be failed")
    assert "murió durante el trabajo" in reason
    job = Job.fetch(job_id, connection=redis_db12)
    assert job.get_status() == "failed" and "AbandonedJobError" in (job.latest_result().exc_string or "")
    assert job_id in Queue(MESSAGES, connection=redis_db12).failed_job_registry.get_job_ids()
    assert read(work / "slow.done") is None


def test_rq_a_live_workers_job_is_left_alone(rq_backend, work):
    rq_backend.workers.start()
    rq_backend.enqueue("tests.slow", str(work), retries=2)
    wait_until(lambda: read(work / "slow.started.1"), 30, "the job to start")

    rq_backend.workers.start()  # a second worker must not steal the first one's running job

    time.sleep(2)
    assert read(work / "slow.started.2") is None and read(work / "slow.done") is None
    assert "0 trabajos abandonados" in rq_backend.workers.output()


# --- the registry: stable names, former names, queues -------------------------------------------------------

FORMER_NAMES = {"services.intake.drain": ("intake.drain", MESSAGES),
                "services.pipeline.process_chat": ("chat.process", MESSAGES),
                "services.media.download_media": ("media.download", OUTSIDE),
                "services.transcription.transcribe_message": ("transcription.transcribe", OUTSIDE),
                "services.sentiment.tag_message": ("sentiment.tag", OUTSIDE),
                "services.forwarding.forward_message": ("forwarding.forward", OUTSIDE),
                "services.agent.send_read_receipt": ("agent.read_receipt", OUTSIDE)}


def test_every_former_job_name_runs_the_task_now_registered_under_a_stable_name():
    for former, (name, queue) in FORMER_NAMES.items():
        entry = lookup(former)
        assert (entry.name, entry.queue) == (name, queue), former
        assert lookup(name) is entry
    app_tasks = {name for name in registered() if not name.startswith("tests.")}
    assert app_tasks == {name for name, _ in FORMER_NAMES.values()} | {"outbox.send"}  # new: no former name


def test_every_task_queued_by_the_app_is_registered():
    import re
    queued = set()
    for path in [*(ROOT / "services").rglob("*.py"), ROOT / "cli.py"]:
        queued |= set(re.findall(r"enqueue(?:_once|_in|_many)?\((?:[^\"()]*, )?\(?\"([a-z_.]+)\"", path.read_text()))
    queued |= {"sentiment.tag"}  # transcription queues it through SENTIMENT_TASK
    assert queued >= {"intake.drain", "chat.process", "media.download", "transcription.transcribe"}
    assert all(lookup(name).name == name for name in queued), queued


def test_an_unknown_task_is_refused_when_queued(app):
    with app.app_context(), pytest.raises(UnknownTask):
        enqueue("services.nada.que_ver", 1)


def test_a_name_cannot_be_taken_twice():
    from services.jobs import task
    with pytest.raises(ValueError, match="already taken"):
        task("tests.record")(lambda directory, value: None)


def test_metrics_and_logs_name_the_task_by_its_stable_name(app, work, caplog):
    import logging
    with app.app_context(), caplog.at_level(logging.INFO, logger="services.jobs"):
        run_task("tests.test_jobs.record", str(work), "antiguo")
    assert read(work / "record.txt") == "antiguo\n"
    assert any(line.startswith("job task=tests.record ") for line in caplog.messages)


def test_outside_work_runs_on_its_own_threads(make_app, work):
    app = make_app(JOB_THREADS=1, OUTSIDE_JOB_THREADS=2)
    backend = Backend("thread", app)
    release = work / "release"
    backend.enqueue("tests.wait_for", str(release))  # holds the only thread of the message path
    backend.enqueue("tests.record_outside", str(work), "fuera")
    assert wait_until(lambda: read(work / "record.txt"), 10, "the outside job") == "fuera\n"
    assert app.extensions["jobs"].stats()["threads"] == {MESSAGES: 1, OUTSIDE: 2}
    release.write_text("ya")


def test_the_worker_refuses_an_unknown_queue(app):
    result = app.test_cli_runner().invoke(args=["worker", "--queues", "mensajes,otra"])
    assert result.exit_code == 2 and "otra: las colas son mensajes y externos" in result.output


# --- RQ only: queues served by separate workers, and jobs queued before the upgrade -----------------------------

def test_rq_each_queue_is_served_by_its_own_worker(rq_backend, work):
    rq_backend.workers.start("mensajes")
    rq_backend.enqueue("tests.record_outside", str(work), "fuera")
    rq_backend.enqueue("tests.record", str(work), "dentro")
    wait_until(lambda: read(work / "record.txt"), 30, "the message-path job")
    time.sleep(1)
    assert read(work / "record.txt") == "dentro\n", "a worker of `mensajes` must not run outside work"

    rq_backend.workers.start("externos")
    wait_until(lambda: (read(work / "record.txt") or "").count("\n") == 2, 30, "the outside job")
    assert "Atendiendo las colas: externos" in rq_backend.workers.output()


def test_rq_a_job_queued_before_the_upgrade_still_runs(rq_backend, work, redis_db12):
    from rq import Callback, Queue, Retry
    # As the version before queued it: one queue, the task by module path.
    Queue(LEGACY_QUEUE, connection=redis_db12).enqueue(
        run_task, "tests.test_jobs.record", str(work), "de antes", retry=Retry(max=3, interval=[1, 5, 30]),
        job_timeout=600, failure_ttl=7 * 24 * 3600, on_failure=Callback(rq_job_failed))

    rq_backend.workers.start("mensajes")

    assert wait_until(lambda: read(work / "record.txt"), 30, "the old job") == "de antes\n"
    assert "Atendiendo las colas: mensajes, whatsapp_ia" in rq_backend.workers.output()
