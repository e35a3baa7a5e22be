"""The journal writer (services.journal): rows of many requests in one INSERT, each request told its own id,
values stored as the ORM stores them, and a connection lost between batches replaced without losing a row."""
import threading
from datetime import datetime

from sqlalchemy import select, text

from extensions import db
from models import WebhookEvent
from services import journal as journal_module


def row(payload: str, received_at: datetime | None = None) -> dict:
    """A journal row; its payload is no update, so the drainer this wakes sets it aside (and stores nothing)."""
    return {"source": "meta", "kind": "text", "payload": payload,
            "received_at": received_at or datetime(2026, 12, 7, 5, 30, 1, 250000)}


def stored(event_id: int) -> WebhookEvent:
    db.session.expire_all()
    return db.session.get(WebhookEvent, event_id)


def test_a_batch_is_one_insert_and_each_row_gets_its_own_id_in_order(app):
    rows = [row(f"cuerpo {i}") for i in range(40)]
    with app.app_context():
        ids = app.extensions["journal"]._insert(rows)
        assert len(set(ids)) == 40 and ids == sorted(ids)
        assert [stored(event_id).payload for event_id in ids] == [f"cuerpo {i}" for i in range(40)]


def test_values_are_stored_as_the_orm_stores_them(app):
    when = datetime(2026, 12, 7, 5, 30, 0)  # no microseconds: SQLite's text form must still read back
    with app.app_context():
        event_id = app.extensions["journal"].append(row("ñandú 🦤 \\ ' \"", when))
        event = stored(event_id)
        assert (event.source, event.kind, event.payload, event.received_at) == ("meta", "text", "ñandú 🦤 \\ ' \"", when)
        assert db.session.scalar(select(WebhookEvent.id).where(WebhookEvent.received_at == when)) == event_id


def test_concurrent_requests_each_get_the_id_of_their_own_row(app):
    results, errors = {}, []
    start = threading.Barrier(16)

    def request(n):
        with app.app_context():
            start.wait()
            try:
                for i in range(5):
                    results[f"{n}-{i}"] = app.extensions["journal"].append(row(f"{n}-{i}"))
            except Exception as error:  # reported below
                errors.append(error)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(results) == 80 and len(set(results.values())) == 80
    with app.app_context():
        assert all(stored(event_id).payload == payload for payload, event_id in results.items())


def test_a_connection_lost_between_batches_is_replaced_and_the_row_stored(app):
    journal = app.extensions["journal"]
    with app.app_context():
        first = journal.append(row("antes"))
        held = journal._held.connection.dbapi_connection
        if db.engine.dialect.name == "sqlite":
            held.close()
        else:
            with db.engine.connect() as other:
                other.execute(text(f"KILL {held.thread_id()}"))
        second = journal.append(row("después"))
        assert second != first and stored(second).payload == "después"
        assert journal._held.connection.dbapi_connection is not held


def test_the_writer_stops_when_idle_gives_back_its_connection_and_starts_again(app, monkeypatch):
    monkeypatch.setattr(journal_module, "IDLE_SECONDS", 0.05)
    journal = app.extensions["journal"]
    with app.app_context():
        journal.append(row("uno"))
        writer = journal._writer
        writer.join(5)
        assert not writer.is_alive() and journal._writer is None and journal._held is None
        assert stored(journal.append(row("dos"))).payload == "dos"
