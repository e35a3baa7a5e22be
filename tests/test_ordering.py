"""One customer's messages are handled in arrival order, one at a time, even with many workers;
different customers in parallel; a message that keeps failing is set aside (DESIGN §3)."""
import json
import random
import time
from collections import defaultdict

import requests
from sqlalchemy import select

from extensions import db
from models import Chat, Message
from services import intake
from services.inbound import find_or_create_chat
from services.meta_payload import parse_update
from services.pipeline import MAX_ATTEMPTS
from tests.concurrency import (Recorder, Workers, at_once, check_chat_handling, post_signed,
                               read_records, serve)
from tests.conftest import post_webhook, text_payload, wait_for_jobs

NUMBERS = ("5215511110001", "5215511110002", "5215511110003")


def stored_inbound(app) -> dict[int, list[int]]:
    """Each chat's inbound message ids in storage order."""
    with app.app_context():
        rows = db.session.execute(select(Message.chat_id, Message.id).where(Message.direction == "in")
                                  .order_by(Message.id)).all()
    stored = defaultdict(list)
    for chat_id, message_id in rows:
        stored[chat_id].append(message_id)
    return dict(stored)


def unprocessed(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Message.id).where(Message.direction == "in",
                                                               Message.processed_at.is_(None))).all())


def test_each_customer_in_arrival_order_one_at_a_time_and_many_customers_per_batch(make_app):
    app = make_app(JOB_THREADS=6)
    app.extensions["inbound_handler"] = recorder = Recorder(delay=0.004)
    bodies = [json.dumps(text_payload(f"wamid.ORD.{numero}.{i}", numero=numero, body=f"{numero[-1]}-{i}")).encode()
              for i in range(30) for numero in NUMBERS]
    random.Random(7).shuffle(bodies)
    shares = [bodies[k::15] for k in range(15)]

    def post_share(share):
        def post():
            with requests.Session() as session:
                return [post_signed(url, body, session).status_code for body in share]
        return post

    with serve(app) as url:
        statuses = at_once([post_share(share) for share in shares])

    assert [code for codes in statuses for code in codes] == [200] * 90
    wait_for_jobs(app, 30)
    stored = stored_inbound(app)
    assert sorted(len(ids) for ids in stored.values()) == [30, 30, 30]
    check_chat_handling(recorder.records, stored)
    in_turn = [record["chat_id"] for record in sorted(recorder.records, key=lambda r: r["start"])]
    assert sum(1 for a, b in zip(in_turn, in_turn[1:]) if a != b) > len(stored), \
        "customers were answered one after the other, not together in the drain's batches"
    assert unprocessed(app) == 0


def test_workers_in_other_processes_keep_each_chat_in_order_and_handle_each_message_once(
        make_app, db_url, media_root, tmp_path):
    record_path = tmp_path / "handled.jsonl"
    app = make_app(JOB_THREADS=2)
    # This process's own jobs take part too: three processes compete for the same chats.
    app.extensions["inbound_handler"] = Recorder(0.003, str(record_path))
    with app.app_context():
        chat_ids = [find_or_create_chat(numero).id for numero in NUMBERS]
        db.session.commit()
    config = {"db_url": db_url, "media_root": str(media_root), "chat_ids": chat_ids,
              "record_path": str(record_path), "delay": 0.003}
    per_chat = 20

    def feed(numero):
        def run():
            for i in range(per_chat):
                raw = json.dumps(text_payload(f"wamid.XP.{numero}.{i}", numero=numero, body=f"m{i}"))
                with app.app_context():
                    intake.accept("meta", parse_update(json.loads(raw)), raw)
                time.sleep(0.003)
        return run

    with Workers("drain", config, 2, tmp_path) as workers:
        workers.go()
        at_once([feed(numero) for numero in NUMBERS])
        reports = workers.results()
        worker_pids = workers.pids
    wait_for_jobs(app, 30)

    assert [report["errors"] for report in reports] == [[], []]
    records = read_records(record_path)
    stored = stored_inbound(app)
    assert sorted(stored) == sorted(chat_ids) and all(len(ids) == per_chat for ids in stored.values())
    check_chat_handling(records, stored)
    for chat_id in chat_ids:
        texts = [r["text"] for r in sorted(records, key=lambda r: r["start"]) if r["chat_id"] == chat_id]
        assert texts == [f"m{i}" for i in range(per_chat)]
    handlers = {record["pid"] for record in records}
    # One drainer at a time answers a batch: any of the processes may have taken every batch.
    assert handlers & set(worker_pids), "no other process took part"
    assert sum(report["handled"] for report in reports) == \
        sum(1 for record in records if record["pid"] in worker_pids)
    assert unprocessed(app) == 0


def test_failing_message_is_retried_then_set_aside_and_the_chat_goes_on(make_app):
    app = make_app()
    calls = []

    def handler(message):
        calls.append(message.text)
        if message.text == "falla":
            raise RuntimeError("el motor de reglas se cayó")

    app.extensions["inbound_handler"] = handler
    client = app.test_client()
    for i, text in enumerate(["uno", "falla", "dos", "tres"]):
        assert post_webhook(client, json.dumps(text_payload(f"wamid.FAIL{i}", body=text)).encode()).status_code == 200
    wait_for_jobs(app)

    assert calls == ["uno"] + ["falla"] * MAX_ATTEMPTS + ["dos", "tres"]
    with app.app_context():
        messages = {m.text: m for m in db.session.scalars(select(Message).where(Message.direction == "in"))}
        failed = messages["falla"]
        assert failed.processed_at is not None and failed.attempts == MAX_ATTEMPTS == 3
        assert failed.error_title.startswith("no procesado") and "RuntimeError" in failed.error_title
        assert "el motor de reglas se cayó" in failed.error_detail
        for text in ("uno", "dos", "tres"):
            assert messages[text].processed_at is not None and messages[text].error_title is None
        assert db.session.scalar(select(Chat)).numero == "5215512345678"


def test_message_failing_once_is_handled_on_retry_without_being_set_aside(make_app):
    app = make_app()
    calls = []

    def handler(message):
        calls.append(message.text)
        if calls.count(message.text) == 1 and message.text == "a veces":
            raise ConnectionError("Graph no respondió")

    app.extensions["inbound_handler"] = handler
    client = app.test_client()
    for i, text in enumerate(["a veces", "después"]):
        assert post_webhook(client, json.dumps(text_payload(f"wamid.ONCE{i}", body=text)).encode()).status_code == 200
    wait_for_jobs(app)

    assert calls == ["a veces", "a veces", "después"]
    with app.app_context():
        messages = {m.text: m for m in db.session.scalars(select(Message).where(Message.direction == "in"))}
        assert messages["a veces"].attempts == 1 and messages["a veces"].error_title is None
        assert all(m.processed_at is not None for m in messages.values())
