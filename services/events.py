"""Live updates for the panel: events leave only after their transaction commits.

`emit()` records an event on the current database session; once the session commits, the
events are published to the broker: in-process fan-out by default, Redis pub/sub when
`REDIS_URL` is set, so every gunicorn worker (and RQ worker) reaches every browser.
"""
import json
import logging
import queue
import threading

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from extensions import db

log = logging.getLogger(__name__)
CHANNEL = "whatsapp_ia:events"
PENDING = "pending_events"


def emit(kind: str, **data) -> None:
    """Publish `{"type": kind, **data}` when the current transaction commits (dropped on rollback)."""
    db.session.info.setdefault(PENDING, []).append({"type": kind, **data})


def _after_commit(session: Session) -> None:
    events = session.info.pop(PENDING, None)
    if events and has_app_context() and "events" in current_app.extensions:
        broker = current_app.extensions["events"]
        for item in events:
            broker.publish(item)


def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without commit: its events never happened
        session.info.pop(PENDING, None)


def install_session_hooks() -> None:
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_transaction_end", _after_transaction_end)


class Subscription:
    def __init__(self, broker: "LocalBroker", size: int = 1000):
        self.broker, self.queue = broker, queue.Queue(maxsize=size)

    def get(self, timeout: float) -> dict | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.broker.unsubscribe(self)


class LocalBroker:
    """Fan-out to the subscribers of this process."""

    def __init__(self):
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    def publish(self, item: dict) -> None:
        self.fan_out(item)

    def fan_out(self, item: dict) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            try:
                subscription.queue.put_nowait(item)
            except queue.Full:
                log.warning("a live-update subscriber is not reading; event dropped for it")

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def stats(self) -> dict:
        return {"backend": "local", "subscribers": len(self._subscribers)}


class RedisBroker(LocalBroker):
    """Publishes to a Redis channel; one listener thread per process fans out what arrives."""

    def __init__(self, redis_url: str):
        super().__init__()
        from redis import Redis
        self.redis = Redis.from_url(redis_url)
        self._listener: threading.Thread | None = None

    def publish(self, item: dict) -> None:
        try:
            self.redis.publish(CHANNEL, json.dumps(item))
        except Exception:  # a live update must never break the write that caused it
            log.exception("live update not published to Redis")

    def subscribe(self) -> Subscription:
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._listen, name="events-listener", daemon=True)
                self._listener.start()
        return super().subscribe()

    def _listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                for message in pubsub.listen():
                    self.fan_out(json.loads(message["data"]))
            except Exception:
                log.exception("Redis live-update listener lost its connection; reconnecting")
                threading.Event().wait(1)

    def stats(self) -> dict:
        return {"backend": "redis", "subscribers": len(self._subscribers)}
