"""The two job backends behind services.jobs: thread pools in this process (one per queue), or RQ on Redis
(one RQ queue per job queue, served by `flask --app app worker --queues ...`)."""
import logging
import sys
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from extensions import db
from services.jobs import (LEGACY_QUEUE, MESSAGES, ONCE_TTL_SECONDS, QUEUES, JobSpec, TransientJobError, failure_reason,
                           give_up, once_key, rq_job_failed, rq_task_of, run_once_task, run_task)

log = logging.getLogger(__name__)


class ThreadJobs:
    """Jobs on thread pools in this process, one pool per queue, retried with backoff on a timer."""

    def __init__(self, app, threads: dict[str, int]):
        self.app, self.threads = app, dict(threads)
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._pending = 0
        self._failures = 0
        self._queued_once = set()
        self._lock = threading.Condition()

    def enqueue(self, spec: JobSpec, args: tuple) -> str:
        job_id = uuid.uuid4().hex
        self._submit(job_id, spec, args, 1)
        return job_id

    def enqueue_many(self, calls: list[tuple[JobSpec, tuple]]) -> list[str]:
        return [self.enqueue(spec, args) for spec, args in calls]

    def enqueue_in(self, delay: float, spec: JobSpec, args: tuple) -> str:
        job_id = uuid.uuid4().hex
        self._later(delay, job_id, spec, args, 1)
        return job_id

    def enqueue_once(self, spec: JobSpec, args: tuple) -> str | None:
        key = once_key(spec.task, args)
        with self._lock:
            if key in self._queued_once:
                return None
            self._queued_once.add(key)
        return self.enqueue(spec, args)

    def _submit(self, job_id, spec, args, attempt):
        with self._lock:
            executor = self._executors.get(spec.queue)
            if executor is None:
                executor = self._executors[spec.queue] = ThreadPoolExecutor(
                    self.threads[spec.queue], thread_name_prefix=f"job-{spec.queue}")
            self._pending += 1
        executor.submit(self._run, job_id, spec, args, attempt)

    def _run(self, job_id, spec, args, attempt):
        with self._lock:
            self._queued_once.discard(once_key(spec.task, args))
        try:
            with self.app.app_context():
                run_task(spec.task, *args)
        except Exception as error:
            if attempt <= spec.retries:
                delay = spec.delays[min(attempt, len(spec.delays)) - 1]
                expected = isinstance(error, TransientJobError)  # its sentence says it all; no traceback
                log.warning("job %s %s%r failed (attempt %d), retrying in %ss: %s", job_id, spec.task, args, attempt,
                            delay, failure_reason(type(error), error), exc_info=not expected)
                self._later(delay, job_id, spec, args, attempt + 1)
            else:
                log.error("job %s %s%r failed for good after %d attempts", job_id, spec.task, args, attempt,
                          exc_info=True)
                with self._lock:
                    self._failures += 1
                with self.app.app_context():
                    give_up(spec.task, args, failure_reason(*sys.exc_info()[:2]))
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
        """True once no job is queued, running or waiting to retry, on any queue."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def stats(self) -> dict:
        with self._lock:
            return {"backend": "thread", "threads": dict(self.threads), "pending": self._pending,
                    "failed": self._failures}


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
    """Jobs on Redis Queue, one queue per name in QUEUES, run by `flask --app app worker` processes."""

    def __init__(self, redis_url: str):
        from redis import Redis
        from rq import Queue
        self.connection = Redis.from_url(redis_url)
        self.queues = {name: Queue(name, connection=self.connection) for name in (*QUEUES, LEGACY_QUEUE)}

    def worker_queues(self, names: list[str]) -> list:
        """The RQ queues a worker serving `names` listens to, in order; the worker of `mensajes` also
        drains the single queue of earlier versions (its jobs name their tasks by their former names)."""
        served = [self.queues[name] for name in names]
        return served + [self.queues[LEGACY_QUEUE]] if MESSAGES in names else served

    @staticmethod
    def _options(spec: JobSpec) -> dict:
        """What every job gets: retries with backoff, a time limit, a week of failure record, give_up at the end."""
        from rq import Callback, Retry
        delays = [max(1, round(delay)) for delay in spec.delays]  # RQ's scheduler counts whole seconds
        return {"retry": Retry(max=spec.retries, interval=delays) if spec.retries else None, "job_timeout": 600,
                "failure_ttl": 7 * 24 * 3600, "on_failure": Callback(rq_job_failed)}

    def enqueue(self, spec: JobSpec, args: tuple) -> str:
        return self.queues[spec.queue].enqueue(run_task, spec.task, *args, **self._options(spec)).id

    def enqueue_many(self, calls: list[tuple[JobSpec, tuple]]) -> list[str]:
        from rq import Queue
        by_queue = defaultdict(list)
        for index, (spec, args) in enumerate(calls):
            options = self._options(spec)
            timeout = options.pop("job_timeout")
            by_queue[spec.queue].append((index, Queue.prepare_data(run_task, (spec.task, *args), timeout=timeout,
                                                                   **options)))
        ids = [""] * len(calls)
        with self.connection.pipeline() as pipeline:
            for name, datas in by_queue.items():
                jobs = self.queues[name].enqueue_many([data for _, data in datas], pipeline=pipeline)
                for (index, _), job in zip(datas, jobs):
                    ids[index] = job.id
            pipeline.execute()
        return ids

    def enqueue_in(self, delay: float, spec: JobSpec, args: tuple) -> str:
        from datetime import timedelta
        return self.queues[spec.queue].enqueue_in(timedelta(seconds=delay), run_task, spec.task, *args,
                                                  **self._options(spec)).id

    def enqueue_once(self, spec: JobSpec, args: tuple) -> str | None:
        # The key is dropped when the job starts (run_once_task); it expires anyway, so a job lost with its
        # Redis data cannot silence the wake-ups for good.
        key = once_key(spec.task, args)
        if not self.connection.set(key, "1", nx=True, ex=ONCE_TTL_SECONDS):
            return None
        return self.queues[spec.queue].enqueue(run_once_task, key, spec.task, *args, **self._options(spec)).id

    def recover_abandoned(self, queues: list | None = None) -> int:
        """Run when a worker starts, for the queues it serves (default: all): jobs still marked as started by
        a worker that is dead (its process gone on this host, or its registration expired) are tried again if
        they have retries left, otherwise failed with the reason. RQ itself does the same, later, when their
        heartbeat expires. Returns how many jobs were recovered."""
        recovered = sum(self._recover_queue(queue) for queue in (queues or list(self.queues.values())))
        if recovered:  # give_up may have used the database: no connection may cross the scheduler's fork
            db.session.remove()
            db.engine.dispose()
        return recovered

    def _recover_queue(self, queue) -> int:
        from rq.exceptions import NoSuchJobError
        from rq.executions import Execution
        from rq.job import Job, JobStatus
        from rq.job_lifecycle import record_job_failure

        self._release_dead_scheduler_lock(queue)
        registry = queue.started_job_registry
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
                    queue.enqueue_job(job, pipeline=pipeline)
                else:
                    record_job_failure(job, reason, pipeline)
                pipeline.zrem(registry.key, f"{job_id}:{execution_id}")
                pipeline.execute()
            if not retry:
                give_up(*rq_task_of(job), reason)
            log.warning("job %s %s%r abandoned by worker %s: %s", job_id, *rq_task_of(job),
                        worker_name or "?", "tried again" if retry else "failed")
            recovered += 1
        return recovered

    def _worker_alive(self, name: str) -> bool:
        from rq.worker import Worker
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=self.connection)
        return worker is not None and _process_alive(worker.hostname, worker.pid)

    def _release_dead_scheduler_lock(self, queue) -> None:
        """A scheduler killed with its worker keeps the queue's scheduler lock for a minute, and with it
        every delayed job and retry: when its process is gone, the lock goes too."""
        from rq.scheduler import RQScheduler
        key = RQScheduler.get_locking_key(queue.name)
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
        counts = {name: queue.count for name, queue in self.queues.items()}
        failed = sum(queue.failed_job_registry.count for queue in self.queues.values())
        return {"backend": "rq", "pending": sum(counts.values()), "failed": failed,
                "queues": {name: counts[name] for name in QUEUES}}
