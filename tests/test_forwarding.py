"""FORWARD_WEBHOOK_URL: each new customer message reaches the business's other system once, through retries."""
import json
from collections import deque

import pytest

from tests.conftest import post_webhook, text_payload, wait_for_jobs
from tests.fakes.server import LocalServer

NUMERO = "5215512345678"


class Receiver(LocalServer):
    """Takes the forwarded messages; answers scripted statuses first, then 200."""

    def __init__(self):
        super().__init__()
        self.statuses = deque()

    def handle(self, request, body):
        with self.lock:
            status = self.statuses.popleft() if self.statuses else 200
            self.requests.append({"path": request.path, "headers": dict(request.headers), "body": json.loads(body),
                                  "status": status})
        self.respond(request, status, {"ok": status == 200})

    def taken(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["status"] == 200]


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def forwarding_app(make_app, receiver):
    return make_app(FORWARD_WEBHOOK_URL=f"{receiver.url}/hook", JOB_RETRY_DELAYS=(0.05, 0.1, 0.2))


def send(app, wamid, body="hola, ¿tienen granito?"):
    response = post_webhook(app.test_client(), json.dumps(text_payload(wamid, numero=NUMERO, body=body)).encode())
    assert response.status_code == 200
    wait_for_jobs(app)


def test_a_new_message_is_forwarded_once_even_when_meta_sends_it_again(forwarding_app, receiver):
    send(forwarding_app, "wamid.F1")
    send(forwarding_app, "wamid.F1")
    [forwarded] = receiver.taken()
    assert forwarded["event"] == "message" and forwarded["numero"] == NUMERO and forwarded["profile_name"] == "Cliente"
    message = forwarded["message"]
    assert (message["wamid"], message["direction"], message["sender"], message["type"], message["text"]) == (
        "wamid.F1", "in", "customer", "text", "hola, ¿tienen granito?")
    request = receiver.requests[0]
    assert request["path"] == "/hook" and request["headers"]["Content-Type"] == "application/json"


def test_a_receiver_that_fails_for_a_while_gets_the_message_on_a_retry(forwarding_app, receiver):
    receiver.statuses.extend([503, 429])
    send(forwarding_app, "wamid.F2")
    assert [r["status"] for r in receiver.requests] == [503, 429, 200]
    assert [m["message"]["wamid"] for m in receiver.taken()] == ["wamid.F2"]


def test_a_refusal_stops_at_once_and_the_chat_goes_on(forwarding_app, receiver):
    receiver.statuses.append(400)
    send(forwarding_app, "wamid.F3")
    send(forwarding_app, "wamid.F4", "gracias")
    assert [(r["status"], r["body"]["message"]["wamid"]) for r in receiver.requests] == [
        (400, "wamid.F3"), (200, "wamid.F4")]


def test_an_unreachable_receiver_is_retried_then_given_up_without_losing_the_message(make_app, receiver, caplog):
    receiver.stop()
    app = make_app(FORWARD_WEBHOOK_URL=receiver.url, JOB_RETRY_DELAYS=(0.01,))
    send(app, "wamid.F5")
    from extensions import db
    from models import Message
    with app.app_context():
        assert db.session.scalar(db.select(Message.text).filter_by(wamid="wamid.F5")) == "hola, ¿tienen granito?"
    assert any("forward message=" in r.getMessage() and "given up" in r.getMessage() for r in caplog.records)


def test_without_a_url_nothing_is_forwarded(app, receiver):
    send(app, "wamid.F6")
    assert receiver.requests == []


def test_the_business_own_replies_are_not_forwarded(forwarding_app, receiver):
    """An echo (the business answering from the WhatsApp Business app) is stored, not forwarded."""
    from tests.shared import CORPUS
    send(forwarding_app, "wamid.F7")
    echo = json.loads((CORPUS / "meta/webhooks/smb_message_echo_text__pywa.json").read_text())
    echo["entry"][0]["changes"][0]["value"]["message_echoes"][0].update(to=NUMERO, id="wamid.ECHO7")
    assert post_webhook(forwarding_app.test_client(), json.dumps(echo).encode()).status_code == 200
    wait_for_jobs(forwarding_app)
    from extensions import db
    from models import Message
    with forwarding_app.app_context():
        assert db.session.scalar(db.select(Message.direction).filter_by(wamid="wamid.ECHO7")) == "out"
    assert [m["message"]["wamid"] for m in receiver.taken()] == ["wamid.F7"]
