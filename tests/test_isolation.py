"""Issue 16: while the Graph API hangs on media for 25 s, a new customer's "hola" is answered at once, on
the thread backend (`make run`) and on RQ (one real worker process per queue): the outside work (media
downloads) has its own threads or workers, and a hanging download never holds up the bot."""
import json
import time

import pytest
from redis import Redis
from sqlalchemy import select

from extensions import db
from models import Chat, Message, Rule
from tests.conftest import post_webhook, text_payload
from tests.rq_workers import REDIS_URL, Workers, worker_env

HANG_SECONDS = 25.0
BOUND_SECONDS = 3.0  # the target is under 1 s; 3 s still proves the bot did not wait for Graph
GREETING = "¡Hola! ¿En qué te ayudamos?"
PHOTOS = 6  # more than the outside threads (OUTSIDE_JOB_THREADS=4): some downloads also wait in the queue
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"


def photo_payload(numero: str, media_id: str) -> bytes:
    payload = text_payload("x", numero=numero)
    payload["entry"][0]["changes"][0]["value"]["messages"] = [
        {"from": numero, "id": f"wamid.photo.{numero}", "timestamp": "1700000000", "type": "image",
         "image": {"id": media_id, "mime_type": "image/jpeg"}}]
    return json.dumps(payload).encode()


def reply_to(app, numero: str) -> str | None:
    with app.app_context():
        text = db.session.scalar(select(Message.text).join(Chat, Message.chat_id == Chat.id)
                                 .where(Chat.numero == numero, Message.direction == "out"))
        db.session.remove()
        return text


@pytest.fixture(params=["thread", "rq"])
def backend(request, make_app, db_url, media_root, graph, tmp_path):
    """(app the webhooks are posted to, how many media downloads run at once)."""
    settings = {"MEDIA_READ_TIMEOUT_SEC": 30.0}  # the download waits the whole hang, as it would in production
    if request.param == "thread":
        yield make_app(**settings), 4
        return
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()  # db 12 only: the job tests'
    app = make_app(JOBS_BACKEND="rq", REDIS_URL=REDIS_URL, **settings)
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    workers = Workers(worker_env(db_url, media_root, graph.url, WHATSAPP_TRANSPORT="sandbox", **settings), logs)
    try:
        workers.start("mensajes")
        workers.start("externos")
        yield app, 1
    finally:
        graph.release()  # the outside worker finishes its download and stops at once
        workers.stop_all()
        print(workers.output())  # shown by pytest when the test failed
        redis.flushdb()


def test_hola_is_answered_while_graph_hangs_on_media(backend, graph):
    app, downloads_at_once = backend
    with app.app_context():
        db.session.add(Rule(step="inicio", input_text="*", respuesta=GREETING, siguiente_step="inicio"))
        db.session.commit()
    client = app.test_client()
    graph.hang_media(HANG_SECONDS)
    try:
        for index in range(PHOTOS):
            graph.add_media(f"photo{index}", JPEG, "image/jpeg")
            assert post_webhook(client, photo_payload(f"52155500030{index:02d}", f"photo{index}")).status_code == 200
        deadline = time.monotonic() + 20
        while graph.holding() < downloads_at_once and time.monotonic() < deadline:
            time.sleep(0.01)
        assert graph.holding() == downloads_at_once, "the outside work must be stuck on Graph first"

        started = time.monotonic()
        body = json.dumps(text_payload("wamid.hola.nuevo", numero="5215500040000", body="hola")).encode()
        assert post_webhook(client, body).status_code == 200
        while reply_to(app, "5215500040000") is None and time.monotonic() - started < HANG_SECONDS:
            time.sleep(0.005)
        answered_in = time.monotonic() - started

        print(f"\n'hola' answered in {answered_in:.3f} s while {graph.holding()} media downloads hung on Graph")
        assert reply_to(app, "5215500040000") == GREETING
        assert answered_in < BOUND_SECONDS, f"the bot waited for the media downloads: {answered_in:.2f} s"
        assert graph.holding() == downloads_at_once, "the downloads were still hanging when the bot answered"
    finally:
        graph.release()
