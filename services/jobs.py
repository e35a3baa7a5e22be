"""One job API with two backends (services.job_backends): thread pools inside this process, or RQ on Redis.

A job runs a registered task (`@task("media.download", queue=OUTSIDE)`) queued by that stable name with
plain ids, so the same call runs in a thread here or in an RQ worker on another host, and a job queued
before a refactor still finds its function (a task keeps its former names as aliases).

Two queues keep the message path apart from slow outside work: `mensajes` (the intake drain and a chat's
pipeline: the bot and its sends) and `externos` (media downloads, transcription, sentiment, forwarding,
read receipts), each with its own threads (JOB_THREADS, OUTSIDE_JOB_THREADS) or its own RQ workers, so an
outside service that hangs never holds up an answer. A failed attempt is tried again later by a timer or
RQ's scheduler, never by sleeping inside the job.
"""
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, has_app_context

from extensions import db
from services import metrics

log = logging.getLogger(__name__)
MESSAGES, OUTSIDE = "mensajes", "externos"
QUEUES = (MESSAGES, OUTSIDE)
LEGACY_QUEUE = "whatsapp_ia"  # the single queue before the split: the worker of `mensajes` still drains it
KEY_PREFIX = "whatsapp_ia"
ONCE_TTL_SECONDS = 60
# Every module that registers tasks, imported on the first lookup so that any process (a worker that never
# imported the web's modules) knows every task.
TASK_MODULES = ("services.intake", "services.pipeline", "services.sender", "services.media", "services.transcription", "services.sentiment",
                "services.forwarding", "services.agent")


class PermanentJobError(Exception):
    """The job cannot succeed by trying again; it records why and stops."""


class TransientJobError(Exception):
    """The job may succeed later: it is tried again, and when its retries run out this message (a sentence
    for the user) is the reason its task records."""


class UnknownTask(PermanentJobError, LookupError):
    """No task is registered under this name."""


@dataclass(frozen=True)
class Task:
    """A function jobs may run, under its stable name: its queue, retries, the setting with the waits
    between attempts, and the names it had before (jobs queued under them still run it)."""
    name: str
    function: Callable
    queue: str
    retries: int
    delays: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """What a backend needs to queue one call of a task."""
    task: str
    queue: str
    retries: int
    delays: tuple[float, ...]


_registry: dict[str, Task] = {}
_registry_lock = threading.Lock()
_modules_loaded = False


def task(name: str, *, queue: str = MESSAGES, retries: int = 3, delays: str = "JOB_RETRY_DELAYS",
         aliases: tuple[str, ...] = ()):
    """Register the decorated function as the task `name` on `queue`, tried `retries` more times after a
    failure, waiting between attempts as the setting `delays` says (the last wait repeats)."""
    if queue not in QUEUES:
        raise ValueError(f"queue {queue!r} is not one of {QUEUES}")

    def register(function: Callable) -> Callable:
        entry = Task(name, function, queue, retries, delays, tuple(aliases))
        with _registry_lock:
            for key in (name, *aliases):
                known = _registry.get(key)
                if known is not None and (known.name != name or known.function.__qualname__ != function.__qualname__
                                          or known.function.__module__ != function.__module__):
                    raise ValueError(f"task name {key!r} is already taken by {known.name} "
                                     f"({known.function.__module__}.{known.function.__qualname__})")
                _registry[key] = entry
        return function
    return register


def _load_task_modules() -> None:
    global _modules_loaded
    if not _modules_loaded:
        for module in TASK_MODULES:
            importlib.import_module(module)
        _modules_loaded = True


def lookup(name: str) -> Task:
    """The task registered under `name` or one of its former names; UnknownTask when there is none."""
    entry = _registry.get(name)
    if entry is None:
        _load_task_modules()
        entry = _registry.get(name)
    if entry is None:
        raise UnknownTask(f"no job task is registered as {name!r}")
    return entry


def registered() -> dict[str, Task]:
    """Every task by its stable name (the task modules imported first)."""
    _load_task_modules()
    with _registry_lock:
        return {entry.name: entry for entry in _registry.values()}


def _spec(name: str, retries: int | None) -> JobSpec:
    entry = lookup(name)
    return JobSpec(entry.name, entry.queue, entry.retries if retries is None else retries,
                   tuple(current_app.config[entry.delays]))


def enqueue(task: str, *args, retries: int | None = None) -> str:
    """Run the task named `task` with `args` in the background, on its queue; returns the job id.
    `retries` replaces the task's own number of retries."""
    return current_app.extensions["jobs"].enqueue(_spec(task, retries), args)


def enqueue_many(calls: list[tuple[str, tuple]], retries: int | None = None) -> list[str]:
    """Run each `(task, args)` of `calls` in the background, queued together (on RQ, one Redis round trip for
    them all, whatever their queues); the job ids, in order."""
    if not calls:
        return []
    return current_app.extensions["jobs"].enqueue_many([(_spec(name, retries), tuple(args)) for name, args in calls])


def enqueue_in(delay: float, task: str, *args, retries: int | None = None) -> str:
    """Run the task named `task` with `args` in the background after `delay` seconds; returns the job id."""
    return current_app.extensions["jobs"].enqueue_in(delay, _spec(task, retries), args)


def enqueue_once(task: str, *args, retries: int | None = None) -> str | None:
    """Like `enqueue`, unless the same call is already queued and not started yet: then nothing (None).

    For wake-ups that many requests send at once (the intake drainer): the queued job will see whatever
    they stored, because a job is taken off the "queued" list when it starts, before it looks.
    """
    return current_app.extensions["jobs"].enqueue_once(_spec(task, retries), args)


def once_key(task: str, args: tuple) -> str:
    return ":".join((KEY_PREFIX, "once", task, *map(str, args)))


def failure_reason(error_type: type | None, error: BaseException | None) -> str:
    """The reason a job failed, as its task records it: a TransientJobError's own sentence, else the
    exception's type and message."""
    if isinstance(error, TransientJobError):
        return str(error)[:200]
    name = error_type.__name__ if error_type is not None else "error"
    detail = str(error or "")
    return f"{name}: {detail}"[:200] if detail else name


def run_task(task: str, *args) -> None:
    """Entry point of every job, in an app context (thread backend or RQ worker); `task` may be a former
    name of the task (a job queued before an upgrade): metrics and logs use its stable name."""
    started, result, name = time.perf_counter(), "failed", task
    try:
        entry = lookup(task)
        name = entry.name
        entry.function(*args)
        result = "ok"
    except PermanentJobError as error:
        result = "stopped"
        log.warning("job %s%r stopped: %s", name, args, error)
    finally:
        db.session.remove()
        seconds = time.perf_counter() - started
        metrics.observe_job(name, seconds, result)
        log.info("job task=%s args=%s result=%s seconds=%.3f", name, ",".join(map(str, args)), result, seconds)


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
        hook = getattr(lookup(task).function, "gave_up", None)
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
    give_up(task, tuple(args), failure_reason(exc_type, exc_value))
