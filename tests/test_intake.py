"""The intake journal (DESIGN §3): 200 once the raw update is stored, messages stored by one drainer at a time,
in arrival order, exactly once even when drainers overlap, and an unreadable update set aside, not lost."""
import json
import threading
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from extensions import db
from models import Lease, Message, WebhookEvent
from models.types import utcnow
from services import intake
from services.jobs import task
from tests.conftest import post_webhook, text_payload, wait_for_jobs


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def journal(app, bodies: list[dict]) -> list[int]:
    """Put updates in the journal without waking anyone (what a crashed web process leaves behind)."""
    with app.app_context():
        ids = [db.session.execute(intake.insert(intake.EVENTS).values(
            source="meta", kind="text", payload=json.dumps(body), received_at=utcnow())).inserted_primary_key[0]
               for body in bodies]
        db.session.commit()
    return ids


def test_webhook_answers_with_its_journal_event_and_the_drainer_stores_the_message(app, client):
    response = post_webhook(client, json.dumps(text_payload("wamid.J1", body="hola")).encode())
    assert response.status_code == 200
    event_id = response.get_json()["event"]
    wait_for_jobs(app)
    with app.app_context():
        event = db.session.get(WebhookEvent, event_id)
        assert event.processed_at is not None and event.error is None and event.kind == "text"
        assert db.session.scalar(select(Message.text).filter_by(wamid="wamid.J1")) == "hola"
        assert db.session.get(Lease, "intake").holder is None, "the lease is released after the drain"


def test_pending_events_are_stored_in_arrival_order_one_customer_at_a_time(app):
    bodies = [text_payload(f"wamid.ORDER.{i}", numero="5215500000001", body=f"m{i}") for i in range(30)]
    journal(app, bodies)
    with app.app_context():
        result = intake.drain()
        assert result.events == 30 and len(result.stored) == 30 and result.failed == 0
        texts = db.session.scalars(select(Message.text).where(Message.direction == "in").order_by(Message.id)).all()
        assert texts == [f"m{i}" for i in range(30)]
        assert count(WebhookEvent, WebhookEvent.processed_at.is_(None)) == 0


def test_duplicates_in_one_batch_are_skipped_and_the_rest_of_the_batch_is_stored(app):
    first, again = text_payload("wamid.DUP", body="uno"), text_payload("wamid.DUP", body="uno")
    journal(app, [first, text_payload("wamid.OTHER", body="dos"), again])
    with app.app_context():
        result = intake.drain()
        assert (result.events, len(result.stored), result.duplicates) == (3, 2, 1)
        assert count(Message, Message.direction == "in") == 2


def test_an_update_that_cannot_be_read_is_set_aside_with_its_reason_and_the_others_go_on(app):
    good, also_good = text_payload("wamid.OK1", body="a"), text_payload("wamid.OK2", body="b")
    with app.app_context():
        db.session.execute(intake.insert(intake.EVENTS).values(source="meta", kind="text",
                                                               payload=json.dumps(good), received_at=utcnow()))
        bad_id = db.session.execute(intake.insert(intake.EVENTS).values(
            source="carrier-pigeon", kind="?", payload="{}", received_at=utcnow())).inserted_primary_key[0]
        db.session.execute(intake.insert(intake.EVENTS).values(source="meta", kind="text",
                                                               payload=json.dumps(also_good), received_at=utcnow()))
        db.session.commit()
        result = intake.drain()
        assert (result.events, result.failed) == (2, 1)
        bad = db.session.get(WebhookEvent, bad_id)
        assert bad.processed_at is not None and "carrier-pigeon" in bad.error and bad.payload == "{}"
        assert sorted(db.session.scalars(select(Message.wamid).where(Message.direction == "in"))) == \
            ["wamid.OK1", "wamid.OK2"]


def test_a_drainer_that_dies_mid_batch_loses_the_lock_with_its_connection(app):
    """A drainer killed inside its batch (its connection gone, its transaction never committed) stored nothing
    and holds nothing: the next drainer stores the batch as soon as the connection dies, with no lease to wait
    out."""
    journal(app, [text_payload("wamid.ORPHAN", body="sigo aquí")])
    with app.app_context():
        intake.drain()  # creates the intake row
        db.session.execute(update(WebhookEvent).values(processed_at=None))
        db.session.execute(delete(Message))
        db.session.commit()
    dead = None
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
        dead = db.engine.connect()
        dead.begin()
        dead.execute(select(Lease.name).where(Lease.name == "intake").with_for_update())
    results = []

    def next_drainer():
        with app.app_context():
            results.append(intake.drain().events)
    try:
        if not sqlite:  # SQLite: the next writer would wait for the first instead
            next_drainer()
            assert results == [0], "a held lock keeps other drainers out"
    finally:
        dead.invalidate()  # the process dies with its connection: the database rolls its transaction back
    next_drainer()
    assert results[-1] == 1
    with app.app_context():
        assert count(Message, Message.wamid == "wamid.ORPHAN") == 1


def test_concurrent_drainers_store_each_wamid_once(app):
    bodies = [text_payload(f"wamid.RACE.{i % 10}", numero=f"52155000000{i % 5}", body=f"r{i % 10}")
              for i in range(60)]
    journal(app, bodies)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def run():
        barrier.wait(10)
        try:
            with app.app_context():
                results.append(intake.drain())
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    stored = [message_id for result in results for message_id in result.stored]
    assert len(stored) == len(set(stored)) == 10
    with app.app_context():
        assert count(Message, Message.direction == "in") == 10
        assert count(WebhookEvent, WebhookEvent.processed_at.is_(None)) == 0


CALLS, GATE = [], threading.Event()


@task("tests.intake.blocking")
def blocking_job() -> None:
    GATE.wait(10)


@task("tests.intake.counted")
def counted_job(tag: str) -> None:
    CALLS.append(tag)


def test_wake_ups_sent_while_a_drain_is_queued_are_one_job(make_app):
    app = make_app(JOB_THREADS=1)
    CALLS.clear()
    GATE.clear()
    with app.app_context():
        from services import jobs
        jobs.enqueue("tests.intake.blocking")  # holds the only job thread
        ids = [jobs.enqueue_once("tests.intake.counted", "x") for _ in range(5)]
        assert ids[0] is not None and ids[1:] == [None] * 4
        GATE.set()
        wait_for_jobs(app)
        assert CALLS == ["x"]
        assert jobs.enqueue_once("tests.intake.counted", "x") is not None, "started jobs take new wake-ups"
        wait_for_jobs(app)
        assert CALLS == ["x", "x"]


def test_a_burst_of_webhooks_is_all_stored(app, client):
    for i in range(40):
        post_webhook(client, json.dumps(text_payload(f"wamid.WAKE.{i}", numero=f"5215511{i:06d}")).encode())
    wait_for_jobs(app)
    with app.app_context():
        assert count(Message, Message.direction == "in") == 40
        assert count(WebhookEvent, WebhookEvent.processed_at.is_(None)) == 0


def test_status_reports_the_journal_backlog_and_a_stuck_one(app, admin_client):
    with app.app_context():
        db.session.add(WebhookEvent(source="meta", kind="text", payload=json.dumps(text_payload("wamid.OLD")),
                                    received_at=utcnow() - timedelta(minutes=10)))
        db.session.commit()
    status = admin_client.get("/api/status")
    intake_status = status.get_json()["intake"]
    assert status.status_code == 503 and intake_status["ok"] is False
    assert intake_status["pending"] == 1 and intake_status["oldest_pending_seconds"] >= 600

    result = app.test_cli_runner().invoke(args=["requeue-pending"])
    assert "1 actualizaciones del diario guardadas" in result.output
    status = admin_client.get("/api/status").get_json()["intake"]
    assert (status["ok"], status["pending"], status["oldest_pending_seconds"]) == (True, 0, None)


def test_an_update_is_accepted_even_when_the_job_queue_is_down(make_app):
    # RQ backend with nothing listening on the Redis port: the journal still takes the update.
    app = make_app(JOBS_BACKEND="rq", REDIS_URL="redis://127.0.0.1:9/0")
    response = post_webhook(app.test_client(), json.dumps(text_payload("wamid.NOQUEUE")).encode())
    assert response.status_code == 200
    with app.app_context():
        event = db.session.get(WebhookEvent, response.get_json()["event"])
        assert event.processed_at is None
        assert json.loads(event.payload)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == "wamid.NOQUEUE"
        assert intake.backlog()[0] == 1, "it waits in the journal for the next drain"
