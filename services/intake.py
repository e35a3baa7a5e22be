"""The intake journal: a webhook is answered once its raw update is stored; the rest happens in a job.

`accept()` is all a webhook request does after its checks: the raw body into `webhook_events`, committed
(the durable point Meta's 200 promises) by the process's journal writer with the other requests' rows of
the moment (services.journal), which then wakes the drainer.

`drain()` is that job. It takes pending events in id order (arrival order, so one customer's messages keep
their order), in batches, one transaction per batch: the transaction first locks the `intake` row of
`leases` (`SELECT … FOR UPDATE SKIP LOCKED` on MariaDB/MySQL; on SQLite every transaction holds the write
lock), so one drainer at a time works across every process and host; another one leaves at once (the holder
looks for new events again before it stops), and a drainer that dies loses the lock with its connection. In that transaction the batch's messages and statuses are stored
(services.inbound), the bot answers the new customer messages (services.conversation) and the events are
marked processed: a crash stores a batch entirely or not at all. Then the follow-up work is queued: the
replies' sender, chats left for `chat.process`, media downloads, Gemini sentiment, forwarding.

Exactly-once does not rest on the lock: a wamid's unique key still decides, so Meta delivering a message
twice stores it once.
"""
import json
import logging
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from extensions import db
from models import Lease, WebhookEvent
from models.types import utcnow
from services import forwarding, jobs, json_input, metrics
from services.conversation import answer_stored
from services.inbound import store_careful, store_fast
from services.meta_payload import ParsedUpdate, clean_text, parse_update
from services.transactions import in_transaction
from services.twilio_payload import parse_form

log = logging.getLogger(__name__)
LEASE = "intake"
BATCH_EVENTS = 100
BATCH_BYTES = 4 * 1024 * 1024
EVENTS = WebhookEvent.__table__
LEASES = Lease.__table__
# source -> parser(raw body as stored) -> ParsedUpdate; only the simulator's own updates may name local files
PARSERS = {"meta": lambda raw: parse_update(json_input.load(raw)),
           "simulator": lambda raw: parse_update(json_input.load(raw), allow_local=True),
           "twilio": parse_form}


@dataclass
class DrainResult:
    events: int = 0
    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    statuses: int = 0
    failed: int = 0
    answered: int = 0  # customer messages the bot answered in the drain's own transaction


def accept(source: str, parsed: ParsedUpdate, raw: str) -> int:
    """Store one update (`raw`, read as `parsed` to name its kind) durably and wake the drainer; the event's
    id. Raises OperationalError when the database cannot take it (the caller answers 503, the sender retries).

    The row goes through the process's journal writer (services.journal), which commits it with the other
    requests' rows of the moment on its own connection: on SQLite the caller must not hold the write lock
    (no transaction open in its session)."""
    values = {"source": source, "kind": clean_text(parsed.kind[:64]), "payload": raw, "received_at": utcnow()}
    return current_app.extensions["journal"].append(values)


def wake() -> None:
    jobs.enqueue_once("intake.drain")


def backlog() -> tuple[int, int | None]:
    """(updates waiting in the journal, seconds the oldest has waited or None)."""
    waiting, oldest = db.session.execute(select(func.count(), func.min(EVENTS.c.received_at))
                                         .where(EVENTS.c.processed_at.is_(None))).one()
    return waiting, None if oldest is None else max(0, int((utcnow() - oldest).total_seconds()))


@jobs.task("intake.drain", queue=jobs.MESSAGES, aliases=("services.intake.drain",))
def drain() -> DrainResult:
    """Store every pending event, batch by batch, each batch under the intake lock (see the module)."""
    result = DrainResult()
    try:
        while True:
            while _drain_batch(result):
                pass
            # A drainer that found the lock taken has gone: what it was woken for may have come in after our
            # last read, so look again now that the lock is free.
            if not _has_pending():
                break
    except IntakeBusy:
        pass  # another drainer is at work, and it looks again before it stops
    return result


class IntakeBusy(Exception):
    """Another drainer holds the intake lock."""


def _lock() -> None:
    """Take the intake lock for this transaction, or raise IntakeBusy."""
    row = select(LEASES.c.name).where(LEASES.c.name == LEASE)
    if db.session.scalar(row.with_for_update(skip_locked=True)) is not None:
        return
    if db.session.scalar(row) is not None:  # there, but locked (a plain read does not wait for the lock)
        raise IntakeBusy()
    if db.session.get_bind().dialect.name == "sqlite":  # this transaction holds the write lock already
        db.session.execute(insert(LEASES).values(name=LEASE))
        return
    # The first drain ever creates the row, in a transaction of its own: drainers racing to create it inside
    # their batch transactions would deadlock on the key.
    with db.engine.begin() as connection:
        connection.execute(insert(LEASES).prefix_with("IGNORE").values(name=LEASE))
    if db.session.scalar(row.with_for_update(skip_locked=True)) is None:
        raise IntakeBusy()


def _has_pending() -> bool:
    found = db.session.scalar(select(EVENTS.c.id).where(EVENTS.c.processed_at.is_(None)).limit(1))
    db.session.commit()
    return found is not None


def _drain_batch(result: DrainResult) -> bool:
    """Store the next batch in one transaction; if a row is already stored or an update cannot be read, again one
    event at a time, so duplicates are skipped and an unreadable update is set aside, not the batch. False when
    nothing was pending."""
    def take_and_store():
        _lock()
        batch = _next_batch()
        return batch, _store_events(batch, store_fast) if batch else []
    try:
        batch, outcomes = in_transaction(take_and_store)
    except (OperationalError, IntakeBusy):
        raise
    except Exception:
        return _drain_one_by_one(result)
    if not batch:
        return False
    _follow_up(outcomes, result)
    return True


def _drain_one_by_one(result: DrainResult) -> bool:
    """The next batch, one event per transaction. The events stored get their follow-up work even when the
    lock is lost on the way (another drainer then takes the rest) or the database fails."""
    batch = in_transaction(lambda: (_lock(), _next_batch())[1])
    outcomes = []
    try:
        for event in batch:
            outcomes += _store_one(event, result)
    finally:
        _follow_up(outcomes, result)
    return bool(batch)


def set_aside(limit: int = 200) -> list[dict]:
    """The newest events that failed or had parts set aside: id, source, kind, received_at, processed_at, error
    and rejected (the parts, as a list)."""
    rows = db.session.execute(select(EVENTS.c.id, EVENTS.c.source, EVENTS.c.kind, EVENTS.c.received_at,
                                     EVENTS.c.processed_at, EVENTS.c.error, EVENTS.c.rejected)
                              .where(EVENTS.c.error.is_not(None)).order_by(EVENTS.c.id.desc()).limit(limit)).all()
    db.session.commit()
    return [{**row._asdict(), "rejected": json.loads(row.rejected) if row.rejected else []} for row in rows]


def replay(event_ids: list[int] | None = None) -> int:
    """Put events that failed or had parts set aside (all, or those of `event_ids`) back in the journal and wake
    the drainer: after a fix their parts are stored, and what is already stored stays stored once (each wamid
    and status is unique). Returns how many events were put back."""
    statement = update(EVENTS).where(EVENTS.c.error.is_not(None))
    if event_ids is not None:
        statement = statement.where(EVENTS.c.id.in_(event_ids))
    count = db.session.execute(statement.values(processed_at=None, error=None, rejected=None)).rowcount
    db.session.commit()
    if count:
        wake()
    log.info("%d webhook events put back in the journal", count)
    return count


def _next_batch() -> list:
    """The oldest pending events, up to BATCH_EVENTS of them and BATCH_BYTES of payload (at least one)."""
    sizes = db.session.execute(select(EVENTS.c.id, func.length(EVENTS.c.payload)).where(EVENTS.c.processed_at.is_(None))
                               .order_by(EVENTS.c.id).limit(BATCH_EVENTS)).all()
    ids, total = [], 0
    for event_id, size in sizes:
        if ids and total + (size or 0) > BATCH_BYTES:
            break
        ids.append(event_id)
        total += size or 0
    if not ids:
        return []
    return db.session.execute(select(EVENTS.c.id, EVENTS.c.source, EVENTS.c.payload)
                              .where(EVENTS.c.id.in_(ids)).order_by(EVENTS.c.id)).all()


def _parse(event) -> ParsedUpdate:
    parser = PARSERS.get(event.source)
    if parser is None:
        raise ValueError(f"origen desconocido: {event.source}")
    return parser(event.payload)


def _store_one(event, result: DrainResult) -> list[tuple]:
    """One event in its own transaction, under the lock (and only if no other drainer stored it meanwhile)."""
    def store(how):
        def work():
            _lock()
            return _store_events([event], how) if _still_pending(event.id) else []
        return in_transaction(work)
    try:
        try:
            return store(store_fast)
        except DBAPIError as error:  # a duplicate, or a row refused: again row by row (services.inbound)
            if isinstance(error, OperationalError):
                raise
            return store(store_careful)
    except (OperationalError, IntakeBusy):
        raise
    except Exception as error:  # kept raw and marked, so it neither blocks the journal nor is lost
        log.exception("webhook event %s could not be stored", event.id)
        reason = f"{type(error).__name__}: {error}"[:255]
        in_transaction(lambda: _mark_failed(event.id, reason))
        metrics.observe_webhook(event.source, "unknown", "failed")
        result.failed += 1
        return []


def _still_pending(event_id: int) -> bool:
    return db.session.scalar(select(EVENTS.c.id).where(EVENTS.c.id == event_id, EVENTS.c.processed_at.is_(None))) \
        is not None


def _store_events(events: list, store) -> list[tuple]:
    now = utcnow()
    outcomes = []
    for event in events:
        parsed = _parse(event)
        outcomes.append((event, parsed, store(parsed)))
    db.session.execute(update(EVENTS).where(EVENTS.c.id.in_([event.id for event in events]))
                       .values(processed_at=now))
    _answer(outcomes)
    for event, parsed, stored in outcomes:
        rejected = parsed.rejected + stored.rejected
        if rejected:
            db.session.execute(update(EVENTS).where(EVENTS.c.id == event.id).values(
                error=_summary(rejected), rejected=json.dumps(rejected, ensure_ascii=False)))
    return outcomes


def _answer(outcomes: list[tuple]) -> None:
    """The bot answers the batch's new customer messages in this same transaction (services.conversation);
    only the chats it left still need a `process_chat` job, the chats with replies one sender job
    (services.sender), and only the texts it did not tag a sentiment job."""
    bot = answer_stored([message_id for _, _, stored in outcomes for message_id in stored.customer])
    for _, _, stored in outcomes:
        stored.answered = [message_id for message_id in stored.customer if message_id in bot.answered]
        stored.to_send = {chat_id for chat_id in stored.chats if chat_id in bot.to_send and chat_id not in bot.left}
        stored.chats = {chat_id for chat_id in stored.chats if chat_id in bot.left}
        stored.texts = [message_id for message_id in stored.texts if message_id not in bot.tagged]


def _summary(rejected: list[dict]) -> str:
    """The `error` of an event stored but for some parts: how many, and the first reason."""
    first = f"{rejected[0]['where']}: {rejected[0]['reason']}"
    return (f"{len(rejected)} parte(s) apartada(s); {first}")[:255]


def _mark_failed(event_id: int, reason: str) -> None:
    db.session.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(processed_at=utcnow(), error=reason))


def _follow_up(outcomes: list[tuple], result: DrainResult) -> None:
    """After the commit: queue the downloads, each chat's flow once, the sentiment tags, the forwarding of new
    customer messages; log and count."""
    media, chats, texts, customer, to_send = [], {}, [], [], {}
    for event, parsed, stored in outcomes:
        result.events += 1
        result.stored += stored.stored
        result.duplicates += stored.duplicates
        result.statuses += stored.statuses
        result.answered += len(stored.answered)
        media += stored.media
        chats.update(dict.fromkeys(sorted(stored.chats)))
        to_send.update(dict.fromkeys(sorted(stored.to_send)))
        texts += stored.texts
        customer += stored.customer
        kind = metrics.webhook_kind(len(stored.stored) + stored.duplicates, stored.statuses)
        metrics.observe_webhook(event.source, kind, "duplicate" if stored.duplicates and not stored.stored else "ok")
        log.info("webhook stored source=%s event=%s kinds=%s new=%s duplicates=%s statuses=%s wamids=%s",
                 event.source, event.id, parsed.kind, len(stored.stored),
                 stored.duplicates, stored.statuses, ",".join(m.wamid for m in parsed.messages + parsed.statuses))
        for part in parsed.rejected + stored.rejected:
            log.warning("webhook event %s: part set aside at %s: %s", event.id, part["where"], part["reason"])
    jobs.enqueue_many(([("outbox.send", (list(to_send),))] if to_send else [])
                      + [("chat.process", (chat_id,)) for chat_id in chats]
                      + [("media.download", (message_id,)) for message_id in media]
                      + [("sentiment.tag", (message_id,)) for message_id in texts])
    forwarding.forward_new(customer)
