"""The panel's live-update stream (Server-Sent Events at `/eventos`), one per open panel tab.

A user holds at most `LIVE_STREAMS_PER_USER` streams at once (counted by the events broker: per process, or
in Redis across processes). A stream writes a heartbeat comment after `HEARTBEAT_SECONDS` without output: that
write is how a client that went away is noticed (the server's write fails and the stream ends, releasing its
slot), and it renews the slot, which otherwise lapses after `SLOT_TTL_SECONDS` (a process that died cannot
release its own). After `MAX_LIFETIME_SECONDS` (less a random tenth, so a restart's reconnections spread out)
the stream says `reconnect` and ends; the browser's EventSource opens a new one by itself.

Who may see an event is decided once per event and process, for every user with a stream in the process, with
one query (`Audience`): a hundred open panels cost one query per event, not a hundred.

In production a stream is one idle connection of a gevent worker (see the README), not a request thread.
"""
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator

from sqlalchemy import and_, exists, or_, select

from extensions import db
from models import Chat, User, chat_roles, user_roles

HEARTBEAT_SECONDS = 15.0
SLOT_TTL_SECONDS = 3 * HEARTBEAT_SECONDS + 5
MAX_LIFETIME_SECONDS = 600.0
RETRY_MILLISECONDS = 2000


def over_limit_message(limit: int) -> str:
    return (f"Ya tiene {limit} paneles recibiendo actualizaciones en vivo, el máximo por usuario. "
            "Cierre alguna de esas pestañas; esta se conectará sola en cuanto haya un lugar libre.")


def stream_slots_in_use(app, user_id: int) -> int:
    """How many live-update streams `user_id` has open now (every process, when Redis is configured)."""
    return app.extensions["events"].slots.count(user_id)


def open_stream(app, user_id: int) -> "LiveStream | None":
    """The SSE text of a new stream for `user_id`, or None when the user already has the maximum open."""
    broker = app.extensions["events"]
    token = broker.slots.claim(user_id, app.config["LIVE_STREAMS_PER_USER"], SLOT_TTL_SECONDS)
    if token is None:
        return None
    return LiveStream(app, user_id, broker, token, app.extensions.setdefault("live_audience", Audience()))


class LiveStream:
    """The stream's text; closing it (the server does, when the response ends or the client is gone, even
    before the first write) lets go of its subscription and its slot."""

    def __init__(self, app, user_id: int, broker, token: str, audience: "Audience"):
        self.user_id, self.slots, self.token, self.audience, self.closed = user_id, broker.slots, token, audience, False
        audience.join(user_id)  # before subscribing: every event this stream receives is decided for its user
        self.subscription = broker.subscribe()
        self._text = _stream(app, user_id, self.slots, token, self.subscription, audience)

    def __iter__(self) -> Iterator[str]:
        return self._text

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._text.close()
            self.subscription.close()
            self.audience.leave(self.user_id)
            self.slots.release(self.user_id, self.token)


def _stream(app, user_id: int, slots, token: str, subscription, audience: "Audience") -> Iterator[str]:
    ends_at = time.monotonic() + MAX_LIFETIME_SECONDS * random.uniform(0.9, 1.0)
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    written = renewed = time.monotonic()
    while (left := ends_at - time.monotonic()) > 0:
        item = subscription.get(timeout=min(left, max(written + HEARTBEAT_SECONDS - time.monotonic(), 0)))
        if item is not None and audience.may_see(app, user_id, item):
            yield f"event: {item['type']}\ndata: {json.dumps(item)}\n\n"
        elif time.monotonic() - written >= HEARTBEAT_SECONDS:
            yield ": ping\n\n"
        else:
            continue
        written = time.monotonic()
        if written - renewed >= HEARTBEAT_SECONDS:
            slots.renew(user_id, token, SLOT_TTL_SECONDS)
            renewed = written
    yield "event: reconnect\ndata: {}\n\n"


class Audience:
    """The users with a live stream in this process, and which of them may see each event (the rule of
    services.access.can_see_chat: active admins see every existing chat, agents the chats of their roles)."""
    REMEMBERED = 256  # events decided; every stream reads an event within moments of the others

    def __init__(self):
        self._users: Counter[int] = Counter()
        self._decisions: dict[int, Decision] = {}
        self._lock = threading.Lock()  # never held across a query: a stream opening holds a pooled connection

    def join(self, user_id: int) -> None:
        with self._lock:
            self._users[user_id] += 1

    def leave(self, user_id: int) -> None:
        with self._lock:
            self._users[user_id] -= 1
            if self._users[user_id] <= 0:
                del self._users[user_id]

    def may_see(self, app, user_id: int, item: dict) -> bool:
        """The first stream to read an event decides it for every user here; the others wait for that."""
        with self._lock:
            decision = self._decisions.get(id(item))
            deciding = decision is None or decision.item is not item
            if deciding:
                decision = self._decisions[id(item)] = Decision(item)
                users = set(self._users)
                while len(self._decisions) > self.REMEMBERED:
                    del self._decisions[next(iter(self._decisions))]
        if deciding:
            try:
                decision.allowed = _users_who_may_see(app, item.get("chat_id"), users)
            finally:
                decision.done.set()
        elif not decision.done.wait(60):
            raise TimeoutError("live update: the decision on an event took over 60 s")
        if decision.allowed is None:  # the query failed: the streams end, the browsers reconnect and read again
            raise RuntimeError("live update: could not tell who may see an event")
        return user_id in decision.allowed


class Decision:
    def __init__(self, item: dict):
        self.item, self.allowed, self.done = item, None, threading.Event()


def _users_who_may_see(app, chat_id, user_ids: set[int]) -> frozenset[int]:
    if not isinstance(chat_id, int) or not user_ids:
        return frozenset()
    through_a_role = exists().where(user_roles.c.user_id == User.id, user_roles.c.role_id == chat_roles.c.role_id,
                                    chat_roles.c.chat_id == chat_id)
    with app.app_context():
        allowed = db.session.scalars(select(User.id).where(
            User.id.in_(user_ids), User.active.is_(True),
            or_(and_(User.is_admin.is_(True), exists().where(Chat.id == chat_id)), through_a_role))).all()
        db.session.remove()
    return frozenset(allowed)
