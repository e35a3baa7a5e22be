"""Tasks the job tests run, registered like the app's (importable by an RQ worker through tests.job_worker:
plain ids and paths as arguments)."""
import os
import time
from pathlib import Path

from services.jobs import OUTSIDE, PermanentJobError, task


def _attempt(directory: str, name: str) -> int:
    counter = Path(directory) / f"{name}.attempts"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    return attempt


@task("tests.record", aliases=("tests.test_jobs.record",))
def record(directory: str, value: str) -> None:
    with (Path(directory) / "record.txt").open("a") as handle:
        handle.write(value + "\n")


@task("tests.record_outside", queue=OUTSIDE)
def record_outside(directory: str, value: str) -> None:
    record(directory, value)


@task("tests.flaky")
def flaky(directory: str, failures: int) -> None:
    attempt = _attempt(directory, "flaky")
    if attempt <= failures:
        raise RuntimeError(f"fallo pasajero {attempt}")
    (Path(directory) / "flaky.done").write_text(str(attempt))


@task("tests.always_fails")
def always_fails(directory: str) -> None:
    _attempt(directory, "always")
    raise RuntimeError("falla siempre")


@task("tests.stops")
def stops(directory: str) -> None:
    _attempt(directory, "stops")
    raise PermanentJobError("no tiene arreglo")


@task("tests.slow")
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


@task("tests.wait_for")
def wait_for(path: str) -> None:
    """Hold a thread until `path` exists (at most 10 s)."""
    deadline = time.monotonic() + 10
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
