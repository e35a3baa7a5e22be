"""Each wamid is stored and processed once, however many times and places Meta delivers it (DESIGN §3)."""
import json
import os

import requests
from sqlalchemy import func, select

from extensions import db
from models import Chat, ChatLease, Message, WebhookEvent
from tests.concurrency import Workers, at_once, post_signed, serve
from tests.conftest import text_payload, wait_for_jobs

WAMID = "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFjNFQjBDMEZFQkE5QTk1RjM1QkYA"
INBOUND = Message.direction == "in"  # the flow engine may answer; its replies are other rows


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_same_webhook_posted_20_times_at_once_to_a_real_server_is_stored_once(make_app):
    app = make_app(JOB_THREADS=4)
    body = json.dumps(text_payload(WAMID, numero="5215512340001", body="¿Tienen envío a Puebla?")).encode()

    def post():
        with requests.Session() as session:
            return post_signed(url, body, session)

    with serve(app) as url:
        responses = at_once([post] * 20)

    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.json()["event"] for r in responses}) == 20, "each delivery is journaled on its own"
    wait_for_jobs(app)
    with app.app_context():
        assert count(Message, INBOUND) == 1 and count(Chat) == 1 and count(ChatLease) == 1
        assert count(WebhookEvent) == 20
        message = db.session.scalar(select(Message).where(INBOUND))
        assert (message.wamid, message.text) == (WAMID, "¿Tienen envío a Puebla?")
        assert message.processed_at is not None and message.attempts == 0
        chat = db.session.scalar(select(Chat))
        assert (chat.numero, chat.unread_count) == ("5215512340001", 1)


def test_same_updates_from_several_processes_at_once_are_stored_once(app, db_url, media_root, tmp_path):
    processes, threads = 3, 10
    updates = {f"wamid.MULTI{i}": f"52155{i:08d}" for i in range(2)}
    bodies = [json.dumps(text_payload(wamid, numero=numero, body=f"pedido {wamid}")) for wamid, numero in updates.items()]
    config = {"db_url": db_url, "media_root": str(media_root), "bodies": bodies, "threads": threads}

    with Workers("receive", config, processes, tmp_path) as workers:
        workers.go()
        reports = workers.results()

    assert len({report["pid"] for report in reports} | {os.getpid()}) == processes + 1
    for report in reports:
        assert report["errors"] == [] and report["idle"], report
    stored = [wamid for report in reports for wamid in report["stored"]]
    assert len(stored) == len(set(stored)), "no wamid may be stored by two drains"
    calls = processes * threads * len(bodies)
    with app.app_context():
        assert count(Message, INBOUND) == len(updates)
        assert count(WebhookEvent) == calls
        assert count(WebhookEvent, WebhookEvent.processed_at.is_(None)) == 0
        assert count(WebhookEvent, WebhookEvent.error.is_not(None)) == 0
        for wamid, numero in updates.items():
            assert count(Message, Message.wamid == wamid) == 1
            chat = db.session.scalar(select(Chat).filter_by(numero=numero))
            assert chat is not None and chat.unread_count == 1
        assert count(Chat) == len(updates) and count(ChatLease) == len(updates)
        assert count(Message, INBOUND, Message.processed_at.is_(None)) == 0
        assert count(ChatLease, ChatLease.holder.is_not(None)) == 0
