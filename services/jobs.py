"""One job API with two backends: a thread pool inside this process, or RQ on Redis.

Jobs are named by dotted path ("services.media.download_media") and take plain ids,
so the same call runs in a thread here or in an RQ worker on another host.
"""
import importlib
import logging
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import current_app, has_app_context

from extensions import db
from services import metrics

log = logging.getLogger(__name__)
QUEUE_NAME = "whatsapp_ia"
ONCE_TTL_SECONDS = 60


class PermanentJobError(Exception):
    """The job cannot succeed by trying again; it records why and stops."""


def enqueue(task: str, *args, retries: int = 3) -> str:
    """Run `task(*args)` in the background; returns the job id."""
    return current_app.extensions["jobs"].enqueue(task, *args, retries=retries)


def enqueue_many(calls: list[tuple[str, tuple]], retries: int = 3) -> list[str]:
    """Run each `task(*args)` of `calls` in the background, queued together (on RQ, one Redis round trip for
    them all); the job ids, in order."""
    return current_app.extensions["jobs"].enqueue_many(calls, retries=retries) if calls else []


def enqueue_in(delay: float, task: str, *args, retries: int = 3) -> str:
    """Run `task(*args)` in the background after `delay` seconds; returns the job id."""
    return current_app.extensions["jobs"].enqueue_in(delay, task, *args, retries=retries)


def enqueue_once(task: str, *args, retries: int = 3) -> str | None:
    """Like `enqueue`, unless the same call is already queued and not started yet: then nothing (None).

    For wake-ups that many requests send at once (the intake drainer): the queued job will see whatever
    they stored, because a job is taken off the "queued" list when it starts, before it looks.
    """
    return current_app.extensions["jobs"].enqueue_once(task, *args, retries=retries)


def once_key(task: str, args: tuple) -> str:
    return ":".join((QUEUE_NAME, "once", task, *map(str, args)))


def resolve(task: str):
    module, name = task.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def run_task(task: str, *args) -> None:
    """Entry point of every job, in an app context (thread backend or RQ worker)."""
    started, result = time.perf_counter(), "failed"
    try:
        resolve(task)(*args)
        result = "ok"
    except PermanentJobError as error:
        result = "stopped"
        log.warning("job %s%r stopped: %s", task, args, error)
    finally:
        db.session.remove()
        seconds = time.perf_counter() - started
        metrics.observe_job(task, seconds, result)
        log.info("job task=%s args=%s result=%s seconds=%.3f", task, ",".join(map(str, args)), result, seconds)


def run_once_task(key: str, task: str, *args) -> None:
    """RQ entry point of `enqueue_once` jobs: off the "queued" list first, then `run_task`."""
    from rq import get_current_job
    get_current_job().connection.delete(key)
    run_task(task, *args)


def give_up(task: str, args: tuple, reason: str) -> None:
    """A job failed for good (last retry, or lost with a crashed worker): let its task record why.

    A task may carry a `gave_up(*args, reason)` function (transcription marks its note, for instance);
    it runs in an app context. Errors here are logged, never raised: the failure is already recorded.
    """
    try:
        hook = getattr(resolve(task), "gave_up", None)
        if hook is None:
            return
        if has_app_context():
            hook(*args, reason)
        else:
            from app import create_app
            with create_app().app_context():
                hook(*args, reason)
    except Exception:
        log.exception("job %s%r: recording its failure failed", task, args)
    finally:
        if has_app_context():
            db.session.remove()


def rq_task_of(job) -> tuple[str, tuple]:
    """The task name and arguments of an RQ job made by `enqueue` or `enqueue_once`."""
    task, *args = job.args[1:] if job.func_name.endswith("run_once_task") else job.args
    return task, tuple(args)


def rq_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback (every failed attempt, and abandoned jobs): on the last one, give up."""
    if job.retries_left:
        return
    task, args = rq_task_of(job)
    reason = exc_type.__name__ if exc_type is not None else "error"
    detail = str(exc_value or "")
    give_up(task, tuple(args), f"{reason}: {detail}"[:200] if detail else reason)


class ThreadJobs:
    """Jobs on a thread pool in the web process, retried with backoff."""

    def __init__(self, app, threads: int, delays: tuple):
        self.app, self.threads, self.delays = app, threads, tuple(delays)
        self._executor = None
        self._pending = 0
        self._failures = 0
        self._queued_once = set()
        self._lock = threading.Condition()

    def enqueue(self, task: str, *args, retries: int = 3) -> str:
        job_id = uuid.uuid4().hex
        self._submit(job_id, task, args, retries, 1)
        return job_id

    def enqueue_many(self, calls: list[tuple[str, tuple]], retries: int = 3) -> list[str]:
        return [self.enqueue(task, *args, retries=retries) for task, args in calls]

    def enqueue_in(self, delay: float, task: str, *args, retries: int = 3) -> str:
        job_id = uuid.uuid4().hex
        self._later(delay, job_id, task, args, retries, 1)
        return job_id

    def enqueue_once(self, task: str, *args, retries: int = 3) -> str | None:
        key = once_key(task, args)
        with self._lock:
            if key in self._queued_once:
                return None
            self._queued_once.add(key)
        return self.enqueue(task, *args, retries=retries)

    def _submit(self, job_id, task, args, retries, attempt):
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="job")
            self._pending += 1
        self._executor.submit(self._run, job_id, task, args, retries, attempt)

    def _run(self, job_id, task, args, retries, attempt):
        with self._lock:
            self._queued_once.discard(once_key(task, args))
        try:
            with self.app.app_context():
                run_task(task, *args)
        except Exception:
            if attempt <= retries:
                delay = self.delays[min(attempt, len(self.delays)) - 1]
                log.warning("job %s %s%r failed (attempt %d), retrying in %ss", job_id, task, args, attempt, delay,
                            exc_info=True)
                self._later(delay, job_id, task, args, retries, attempt + 1)
            else:
                log.error("job %s %s%r failed for good after %d attempts", job_id, task, args, attempt, exc_info=True)
                with self._lock:
                    self._failures += 1
                with self.app.app_context():
                    error = sys.exc_info()[1]
                    give_up(task, args, f"{type(error).__name__}: {error}"[:200])
        finally:
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def _later(self, delay, *job):
        with self._lock:
            self._pending += 1

        def fire():
            with self._lock:
                self._pending -= 1
            self._submit(*job)
        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once no job is queued, running or waiting to retry."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def stats(self) -> dict:
        with self._lock:
            return {"backend": "thread", "threads": self.threads, "pending": self._pending, "failed": self._failures}


def _process_alive(hostname: str | None, pid: int | None) -> bool:
    """False only when the process is known dead: on this host and gone."""
    import os
    import socket
    if hostname != socket.gethostname() or not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RqJobs:
    """Jobs on Redis Queue, run by `flask --app app worker` processes."""

    def __init__(self, redis_url: str, delays: tuple):
        from redis import Redis
        from rq import Queue
        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.connection)
        self.delays = [max(1, round(d)) for d in delays]

    def _options(self, retries: int) -> dict:
        """What every job gets: retries with backoff, a time limit, a week of failure record, give_up at the end."""
        from rq import Callback, Retry
        return {"retry": Retry(max=retries, interval=self.delays) if retries else None, "job_timeout": 600,
                "failure_ttl": 7 * 24 * 3600, "on_failure": Callback(rq_job_failed)}

    def enqueue(self, task: str, *args, retries: int = 3) -> str:
        return self.queue.enqueue(run_task, task, *args, **self._options(retries)).id

    def enqueue_many(self, calls: list[tuple[str, tuple]], retries: int = 3) -> list[str]:
        from rq import Queue
        options = self._options(retries)
        timeout = options.pop("job_timeout")
        datas = [Queue.prepare_data(run_task, (task, *args), timeout=timeout, **options) for task, args in calls]
        return [job.id for job in self.queue.enqueue_many(datas)]

    def enqueue_in(self, delay: float, task: str, *args, retries: int = 3) -> str:
        from datetime import timedelta
        return self.queue.enqueue_in(timedelta(seconds=delay), run_task, task, *args, **self._options(retries)).id

    def enqueue_once(self, task: str, *args, retries: int = 3) -> str | None:
        # The key is dropped when the job starts (run_once_task); it expires anyway, so a job lost with its
        # Redis data cannot silence the wake-ups for good.
        key = once_key(task, args)
        if not self.connection.set(key, "1", nx=True, ex=ONCE_TTL_SECONDS):
            return None
        return self.queue.enqueue(run_once_task, key, task, *args, **self._options(retries)).id

    def recover_abandoned(self) -> int:
        """Run when a worker starts: jobs still marked as started by a worker that is dead (its process gone
        on this host, or its registration expired) are tried again if they have retries left, otherwise
        failed with the reason. RQ itself does the same, later, when their heartbeat expires.
        Returns how many jobs were recovered."""
        from rq.exceptions import NoSuchJobError
        from rq.executions import Execution
        from rq.job import Job, JobStatus
        from rq.job_lifecycle import record_job_failure

        self._release_dead_scheduler_lock()
        registry = self.queue.started_job_registry
        recovered = 0
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                worker_name = Execution.fetch(execution_id, job_id, self.connection).worker_name
            except Exception:  # the execution's key expired with its heartbeat: nobody is running it
                worker_name = ""
            if worker_name and self._worker_alive(worker_name):
                continue
            try:
                job = Job.fetch(job_id, connection=self.connection)
            except NoSuchJobError:
                self.connection.zrem(registry.key, f"{job_id}:{execution_id}")
                continue
            if job.get_status() != JobStatus.STARTED:
                self.connection.zrem(registry.key, f"{job_id}:{execution_id}")
                continue
            reason = f"el worker {worker_name or '?'} murió durante el trabajo (AbandonedJobError)"
            retry = bool(job.retries_left)
            with self.connection.pipeline() as pipeline:
                if retry:  # at once: it has waited for its dead worker long enough
                    job.retries_left -= 1
                    self.queue.enqueue_job(job, pipeline=pipeline)
                else:
                    record_job_failure(job, reason, pipeline)
                pipeline.zrem(registry.key, f"{job_id}:{execution_id}")
                pipeline.execute()
            if not retry:
                give_up(*rq_task_of(job), reason)
            log.warning("job %s %s%r abandoned by worker %s: %s", job_id, *rq_task_of(job),
                        worker_name or "?", "tried again" if retry else "failed")
            recovered += 1
        if recovered:  # give_up may have used the database: no connection may cross the scheduler's fork
            db.session.remove()
            db.engine.dispose()
        return recovered

    def _worker_alive(self, name: str) -> bool:
        from rq.worker import Worker
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=self.connection)
        return worker is not None and _process_alive(worker.hostname, worker.pid)

    def _release_dead_scheduler_lock(self) -> None:
        """A scheduler killed with its worker keeps the queue's scheduler lock for a minute, and with it
        every delayed job and retry: when its process is gone, the lock goes too."""
        from rq.scheduler import RQScheduler
        key = RQScheduler.get_locking_key(self.queue.name)
        holder = self.connection.get(key)
        if holder is None:
            return
        info = self.connection.hgetall(f"rq:scheduler:{holder.decode()}")
        hostname = (info.get(b"hostname") or b"").decode() or None
        pid = int(info.get(b"pid") or 0)
        if hostname and not _process_alive(hostname, pid):
            self.connection.delete(key)
            log.warning("scheduler lock of dead scheduler %s released", holder.decode())

    def stats(self) -> dict:
        return {"backend": "rq", "pending": self.queue.count, "failed": self.queue.failed_job_registry.count}
