"""Live updates for the panel: events leave only after their transaction commits.

`emit()` records an event on the current database session; once the session commits, the
events are published to the broker: in-process fan-out by default, Redis pub/sub when
`REDIS_URL` is set, so every gunicorn worker (and RQ worker) reaches every browser.

Each broker also counts the live-update streams open per user (`slots`): in this process for the local
broker, in Redis for the Redis one, so that a cap per user holds across gunicorn workers and hosts.
"""
import json
import logging
import math
import queue
import threading
import time
import uuid

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


def coalesce(events: list[dict]) -> list[dict]:
    """A transaction's events, one per chat and kind: the panel fetches a chat's new messages in one go on one
    `message` event (which also refreshes the chat, so its `chat` events go), and each changed message once. A
    drain batch of many messages then publishes one event per chat, not five per message."""
    with_messages = {item["chat_id"] for item in events if item["type"] == "message"}
    kept, seen = [], set()
    for item in events:
        if item["type"] == "chat" and item["chat_id"] in with_messages:
            continue
        key = (item["type"], item.get("chat_id"), item.get("message_id") if item["type"] == "message_update" else None)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: its events wait for the real commit
        return
    events = session.info.pop(PENDING, None)
    if events and has_app_context() and "events" in current_app.extensions:
        broker = current_app.extensions["events"]
        for item in coalesce(events):
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


class StreamSlots:
    """Live-update streams open per user in this process. A slot is held by a token until released or until
    `ttl` seconds pass without a renewal (a stream renews its slot with every heartbeat)."""

    def __init__(self):
        self._open: dict[int, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _alive(self, user_id: int, now: float) -> dict[str, float]:
        slots = self._open.setdefault(user_id, {})
        for token in [token for token, until in slots.items() if until <= now]:
            del slots[token]
        return slots

    def claim(self, user_id: int, limit: int, ttl: float) -> str | None:
        """A token for a new stream of `user_id`, or None when `limit` streams are already open."""
        with self._lock:
            now = time.monotonic()
            slots = self._alive(user_id, now)
            if len(slots) >= limit:
                return None
            token = uuid.uuid4().hex
            slots[token] = now + ttl
            return token

    def renew(self, user_id: int, token: str, ttl: float) -> None:
        with self._lock:
            slots = self._open.get(user_id, {})
            if token in slots:
                slots[token] = time.monotonic() + ttl

    def release(self, user_id: int, token: str) -> None:
        with self._lock:
            slots = self._open.get(user_id, {})
            slots.pop(token, None)
            if not slots:
                self._open.pop(user_id, None)

    def count(self, user_id: int) -> int:
        with self._lock:
            return len(self._alive(user_id, time.monotonic()))


# Scores are expiry times on Redis's own clock (TIME), so hosts with skewed clocks agree.
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
_CLAIM = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
_RENEW = _NOW + """
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""
_COUNT = _NOW + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) return redis.call('ZCARD', KEYS[1])"


class RedisStreamSlots:
    """The same count kept in Redis (one sorted set per user: token -> expiry), shared by every process.
    If Redis cannot be reached, this process counts on its own meanwhile rather than refuse the panel."""
    PREFIX = "whatsapp_ia:live_streams:"

    def __init__(self, redis):
        self.redis, self.local = redis, StreamSlots()
        self._claim, self._renew, self._count = (redis.register_script(s) for s in (_CLAIM, _RENEW, _COUNT))

    def claim(self, user_id: int, limit: int, ttl: float) -> str | None:
        token = uuid.uuid4().hex
        try:
            claimed = self._claim(keys=[self.PREFIX + str(user_id)], args=[limit, ttl, token, math.ceil(ttl) + 1])
        except Exception:
            log.exception("live-stream slots not counted in Redis; counting in this process")
            local = self.local.claim(user_id, limit, ttl)
            return local and "local:" + local
        return token if claimed else None

    def renew(self, user_id: int, token: str, ttl: float) -> None:
        if token.startswith("local:"):
            return self.local.renew(user_id, token[6:], ttl)
        try:
            self._renew(keys=[self.PREFIX + str(user_id)], args=[ttl, token, math.ceil(ttl) + 1])
        except Exception:  # the slot then lapses after ttl; the stream itself goes on
            log.warning("live-stream slot not renewed in Redis", exc_info=True)

    def release(self, user_id: int, token: str) -> None:
        if token.startswith("local:"):
            return self.local.release(user_id, token[6:])
        try:
            self.redis.zrem(self.PREFIX + str(user_id), token)
        except Exception:
            log.warning("live-stream slot not released in Redis; it lapses by itself", exc_info=True)

    def count(self, user_id: int) -> int:
        try:
            return int(self._count(keys=[self.PREFIX + str(user_id)]))
        except Exception:
            return self.local.count(user_id)


class LocalBroker:
    """Fan-out to the subscribers of this process."""

    def __init__(self):
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self.slots = StreamSlots()

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
        self.slots = RedisStreamSlots(self.redis)
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
