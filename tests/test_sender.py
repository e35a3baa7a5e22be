"""The sender: one job per drain batch sends every chat's replies, in each chat's order; a reply whose sender
died is sent once its lease has expired, never lost."""
import json
from datetime import timedelta

from sqlalchemy import select, update

from extensions import db
from services.metrics import REGISTRY
from models import ChatLease, Message, WebhookEvent
from models.types import utcnow
from services import intake
from services.inbound import find_or_create_chat
from services.outbox import queue_message
from services.rules import create_rule
from services.sender import send_chats
from tests.conftest import text_payload, wait_for_jobs
from tests.rule_factories import rule_row

TASK = "outbox.send"


def jobs_run(task: str) -> float:
    return sum(REGISTRY.get_sample_value("whatsapp_jobs_total", {"task": task, "result": result}) or 0
               for result in ("ok", "failed", "stopped"))


def test_one_job_sends_the_replies_of_a_whole_drain_batch(app):
    with app.app_context():
        create_rule(rule_row(input_text="*", respuesta="recibido"))
        for i in range(20):
            db.session.add(WebhookEvent(source="meta", kind="text", payload=json.dumps(
                text_payload(f"wamid.SEND.{i}", numero=f"52155000{i:05d}", body=f"mensaje {i}"))))
        db.session.commit()
        senders, chats = jobs_run(TASK), jobs_run("chat.process")
        assert intake.drain().answered == 20
    wait_for_jobs(app)
    with app.app_context():
        replies = db.session.scalars(select(Message).where(Message.direction == "out")).all()
        assert len(replies) == 20 and {reply.status for reply in replies} == {"delivered"}
        assert len({reply.chat_id for reply in replies}) == 20
    assert jobs_run(TASK) - senders == 1
    assert jobs_run("chat.process") - chats == 0


def pending_reply(app, holder=None, expires_in=None) -> tuple[int, int]:
    with app.app_context():
        chat = find_or_create_chat("5215577770000")
        db.session.flush()
        message = queue_message(chat.id, "text", "respuesta")
        if holder:
            db.session.execute(update(ChatLease).where(ChatLease.chat_id == chat.id).values(
                holder=holder, expires_at=utcnow() + timedelta(seconds=expires_in)))
        db.session.commit()
        return chat.id, message.id


def status_of(app, message_id: int) -> str:
    with app.app_context():
        return db.session.scalar(select(Message.status).where(Message.id == message_id))


def test_a_reply_left_by_a_dead_sender_is_sent_once_its_lease_expires(app):
    """A worker killed between the Graph call and its commit leaves the reply pending with its lease taken:
    nothing is sent while the lease holds, and the reply goes (again) once it has expired."""
    chat_id, message_id = pending_reply(app, holder="sender:muerto", expires_in=60)
    with app.app_context():
        assert send_chats([chat_id]) == 0
    assert status_of(app, message_id) == "pending"
    with app.app_context():
        db.session.execute(update(ChatLease).where(ChatLease.chat_id == chat_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert send_chats([chat_id]) == 1
    assert status_of(app, message_id) == "delivered"
    with app.app_context():
        assert db.session.scalar(select(ChatLease.holder).where(ChatLease.chat_id == chat_id)) is None
