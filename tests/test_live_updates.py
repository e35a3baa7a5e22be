"""Live-update streams (/eventos): a cap per user, slots freed when a client goes away or a stream's time is up,
counted across processes in Redis, and the production web command still answering with more streams open than
gunicorn's gthread setup had threads."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from services import events, live
from services.signatures import meta_signature
from tests.browser import served
from tests.conftest import text_payload

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/13"
PASSWORD = "clave-de-agente"


def cookie_of(response: bytes, name: str = "session") -> str | None:
    match = re.search(rb"(?im)^set-cookie:\s*" + name.encode() + rb"=([^;\r\n]*)", response)
    return match.group(1).decode() if match else None


def http(base: str, method: str, path: str, body: bytes = b"", headers: dict | None = None,
         timeout: float = 5) -> tuple[int, bytes]:
    """One request on its own connection: (status, raw response). Cookies are passed by hand, since production
    marks them Secure and these servers speak plain HTTP."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return int(raw.split(b" ", 2)[1]), raw


def sign_in(base: str, username: str) -> str:
    """The session cookie of `username`, signed in through the login form."""
    _, page = http(base, "GET", "/login")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    form = f"username={username}&password={PASSWORD}&csrf_token={token}".encode()
    status, raw = http(base, "POST", "/login", form, {"Cookie": f"session={cookie_of(page)}",
                                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 302, raw[:300]
    return cookie_of(raw)


class Stream:
    """An open /eventos connection, read up to its first line."""

    def __init__(self, base: str, cookie: str, timeout: float = 5):
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.sendall(f"GET /eventos HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: session={cookie}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.head += chunk
        self.status = int(self.head.split(b" ", 2)[1])

    def read_until(self, marker: bytes, timeout: float = 5) -> bytes:
        self.sock.settimeout(timeout)
        data = self.head
        while marker not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def wait_until(condition, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def quick_heartbeat(monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(live, "SLOT_TTL_SECONDS", 5.0)


def user_id(app, username: str) -> int:
    from sqlalchemy import select

    from extensions import db
    from models import User
    with app.app_context():
        return db.session.scalar(select(User.id).filter_by(username=username))


def test_a_user_gets_at_most_the_cap_and_a_closed_stream_frees_its_slot(make_app, make_user, quick_heartbeat):
    app = make_app(LIVE_STREAMS_PER_USER=2)
    make_user("vera", PASSWORD)
    make_user("sara", PASSWORD)
    with served(app) as base:
        vera, sara = sign_in(base, "vera"), sign_in(base, "sara")
        streams = [Stream(base, vera), Stream(base, vera)]
        assert [s.status for s in streams] == [200, 200]
        assert b"retry: 2000" in streams[0].read_until(b"retry:")

        refused = Stream(base, vera)
        assert refused.status == 429
        body = json.loads(refused.read_until(b"}").split(b"\r\n\r\n", 1)[1])
        assert "máximo por usuario" in body["error"] and body["maximo"] == 2
        refused.close()
        status, raw = http(base, "GET", "/eventos?comprobar=1", headers={"Cookie": f"session={vera}"})
        assert status == 429
        other = Stream(base, sara)  # the cap is per user
        assert other.status == 200

        streams.pop().close()
        assert wait_until(lambda: live.stream_slots_in_use(app, user_id(app, "vera")) == 1)
        status, raw = http(base, "GET", "/eventos?comprobar=1", headers={"Cookie": f"session={vera}"})
        assert status == 200 and json.loads(raw.split(b"\r\n\r\n", 1)[1]) == {"abiertas": 1, "maximo": 2}
        again = Stream(base, vera)
        assert again.status == 200
        for stream in (*streams, other, again):
            stream.close()


def test_a_stream_ends_and_frees_its_slot_when_the_client_goes_away(app, make_user, quick_heartbeat):
    make_user("vera", PASSWORD)
    broker = app.extensions["events"]
    with served(app) as base:
        stream = Stream(base, sign_in(base, "vera"))
        assert stream.status == 200
        stream.read_until(b": ping")  # heartbeats flow while the client listens
        assert live.stream_slots_in_use(app, user_id(app, "vera")) == 1
        assert broker.stats()["subscribers"] == 1
        stream.close()
        assert wait_until(lambda: broker.stats()["subscribers"] == 0)
        assert live.stream_slots_in_use(app, user_id(app, "vera")) == 0


def test_a_stream_ends_after_its_lifetime_asking_the_browser_to_reconnect(app, make_user, quick_heartbeat,
                                                                          monkeypatch):
    monkeypatch.setattr(live, "MAX_LIFETIME_SECONDS", 0.5)
    make_user("vera", PASSWORD)
    with served(app) as base:
        stream = Stream(base, sign_in(base, "vera"))
        text = stream.read_until(b"event: reconnect")
        assert b"retry: 2000" in text and b"event: reconnect" in text
        stream.close()
        assert wait_until(lambda: live.stream_slots_in_use(app, user_id(app, "vera")) == 0)


def test_redis_counts_the_slots_of_every_process(make_app, monkeypatch):
    monkeypatch.setattr(events.RedisStreamSlots, "PREFIX", f"whatsapp_ia:test_live_streams:{uuid.uuid4().hex}:")
    first, second = make_app(REDIS_URL=REDIS_URL, LIVE_STREAMS_PER_USER=2), make_app(REDIS_URL=REDIS_URL,
                                                                                      LIVE_STREAMS_PER_USER=2)
    opened = [live.open_stream(first, 7), live.open_stream(first, 7)]
    assert all(opened) and live.open_stream(second, 7) is None
    assert live.stream_slots_in_use(second, 7) == 2
    opened.pop().close()
    other = live.open_stream(second, 7)
    assert other is not None
    for stream in (*opened, other):
        stream.close()
    assert live.stream_slots_in_use(first, 7) == 0

    slots = second.extensions["events"].slots  # a process that died never releases: its slot lapses
    assert slots.claim(8, 1, 0.3) and slots.claim(8, 1, 0.3) is None
    assert wait_until(lambda: slots.claim(8, 1, 0.3) is not None, timeout=3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_production_web_command_answers_with_more_streams_open_than_gthread_had_threads(app, db_url, make_user):
    """More streams than the old `-w 2 -k gthread --threads 8` had threads: health and webhooks still answer."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from web_command import bound_to, gunicorn_command

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    command = bound_to(gunicorn_command(), f"127.0.0.1:{port}")
    command[0] = str(bin_dir / "gunicorn")
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "a-test-secret-for-gunicorn", "APP_ENV": "production",
           "JOBS_BACKEND": "thread", "REDIS_URL": "", "META_APP_SECRET": "app-secret", "META_TOKEN": "",
           "WHATSAPP_TRANSPORT": "sandbox", "LOGIN_RATE_LIMIT": "100 per minute", "LIVE_STREAMS_PER_USER": "30",
           "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # present even if empty, it makes prometheus_client write files to the cwd
    make_user("vera", PASSWORD)
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    streams = []
    try:
        assert wait_until(lambda: _answers(base), timeout=30), "gunicorn did not start"
        cookie = sign_in(base, "vera")
        streams = [Stream(base, cookie) for _ in range(24)]
        assert [s.status for s in streams] == [200] * 24
        status, raw = http(base, "GET", "/api/health", timeout=5)
        assert status == 200 and b'"ok"' in raw
        body = json.dumps(text_payload("wamid.LIVE-GUNICORN")).encode()
        status, _ = http(base, "POST", "/webhook", body, {"Content-Type": "application/json",
                                                          "X-Hub-Signature-256": meta_signature("app-secret", body)})
        assert status == 200
    finally:
        for stream in streams:
            stream.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def _answers(base: str) -> bool:
    try:
        return http(base, "GET", "/api/health", timeout=1)[0] == 200
    except OSError:
        return False


def test_a_batch_of_messages_publishes_one_event_per_chat(app):
    """Ten messages of two customers stored (and answered) by one drain batch reach the panel as one `message`
    event per chat, not one per message, reply and state change."""
    from extensions import db
    from models import WebhookEvent
    from services import intake
    subscription = app.extensions["events"].subscribe()
    try:
        with app.app_context():
            for i in range(10):
                payload = text_payload(f"wamid.BATCH.{i}", numero=("5215500000001", "5215500000002")[i % 2],
                                       body=f"hola {i}")
                db.session.add(WebhookEvent(source="meta", kind="text", payload=json.dumps(payload)))
            db.session.commit()
            assert intake.drain().answered == 10
        app.extensions["jobs"].wait_idle(15)
        received = []
        while (item := subscription.get(0.2)) is not None:
            received.append(item)
    finally:
        subscription.close()
    with app.app_context():
        from models import Chat
        chat_ids = sorted(db.session.scalars(db.select(Chat.id)))
    assert sorted((item["type"], item["chat_id"]) for item in received if item["type"] != "message_update") == \
        [("message", chat_id) for chat_id in chat_ids] and len(chat_ids) == 2


def test_events_inside_a_savepoint_wait_for_the_real_commit(app):
    """A released savepoint is no commit: its events go out only if the whole transaction commits."""
    from extensions import db
    subscription = app.extensions["events"].subscribe()
    try:
        with app.app_context():
            with db.session.begin_nested():
                events.emit("chat", chat_id=7)
            assert subscription.get(0.1) is None
            db.session.rollback()
            assert subscription.get(0.1) is None
            with db.session.begin_nested():
                events.emit("chat", chat_id=8)
            db.session.commit()
            assert subscription.get(1) == {"type": "chat", "chat_id": 8}
    finally:
        subscription.close()
