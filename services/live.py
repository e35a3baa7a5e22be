"""The panel's live-update stream (Server-Sent Events at `/eventos`), one per open panel tab.

A user holds at most `LIVE_STREAMS_PER_USER` streams at once (counted by the events broker: per process, or
in Redis across processes). A stream writes a heartbeat comment after `HEARTBEAT_SECONDS` without output: that
write is how a client that went away is noticed (the server's write fails and the stream ends, releasing its
slot), and it renews the slot, which otherwise lapses after `SLOT_TTL_SECONDS` (a process that died cannot
release its own). After `MAX_LIFETIME_SECONDS` (less a random tenth, so a restart's reconnections spread out)
the stream says `reconnect` and ends; the browser's EventSource opens a new one by itself.

In production a stream is one idle connection of a gevent worker (see the README), not a request thread.
"""
import json
import random
import time
from collections.abc import Iterator

from extensions import db
from models import User
from services.access import can_see_chat

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
    return LiveStream(app, user_id, broker, token)


class LiveStream:
    """The stream's text; closing it (the server does, when the response ends or the client is gone, even
    before the first write) lets go of its subscription and its slot."""

    def __init__(self, app, user_id: int, broker, token: str):
        self.user_id, self.slots, self.token, self.closed = user_id, broker.slots, token, False
        self.subscription = broker.subscribe()
        self._text = _stream(app, user_id, self.slots, token, self.subscription)

    def __iter__(self) -> Iterator[str]:
        return self._text

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._text.close()
            self.subscription.close()
            self.slots.release(self.user_id, self.token)


def _stream(app, user_id: int, slots, token: str, subscription) -> Iterator[str]:
    ends_at = time.monotonic() + MAX_LIFETIME_SECONDS * random.uniform(0.9, 1.0)
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    written = renewed = time.monotonic()
    while (left := ends_at - time.monotonic()) > 0:
        item = subscription.get(timeout=min(left, max(written + HEARTBEAT_SECONDS - time.monotonic(), 0)))
        if item is not None and _may_see(app, user_id, item):
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


def _may_see(app, user_id: int, item: dict) -> bool:
    with app.app_context():
        user = db.session.get(User, user_id)
        allowed = user is not None and user.active and can_see_chat(user, item.get("chat_id"))
        db.session.remove()
    return allowed
