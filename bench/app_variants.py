"""Diagnostic variants of the real app for bench/webhook_bench.py (`--variants`).

Each is the real `create_app()` with one piece of the webhook's work taken out, so the
difference with the full app says what that piece costs under load. Not for production.

    gunicorn ... --pythonpath bench 'app_variants:no_jobs()'
"""
import uuid

from app import create_app


class DroppedJobs:
    """Accepts jobs and runs nothing: the webhook's request path alone (journal + 200)."""

    def __init__(self):
        self.dropped = 0

    def enqueue(self, spec, args):
        self.dropped += 1
        return uuid.uuid4().hex

    def enqueue_many(self, calls):
        return [self.enqueue(spec, args) for spec, args in calls]

    def enqueue_in(self, delay, spec, args):
        return self.enqueue(spec, args)

    def enqueue_once(self, spec, args):
        return self.enqueue(spec, args)

    def stats(self):
        return {"backend": "dropped", "dropped": self.dropped}


def no_jobs():
    """The real webhook route, storing for real, with process_chat and media jobs never run."""
    app = create_app()
    app.extensions["jobs"] = DroppedJobs()
    return app


def no_jobs_quiet():
    """no_jobs() with INFO logging off (only WARNING and up), to price the per-request log line."""
    import logging
    app = no_jobs()
    logging.getLogger().setLevel(logging.WARNING)
    return app
