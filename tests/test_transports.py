"""CloudTransport against the local fake Graph server; SandboxTransport; the throttle."""
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from services.graph import GraphClient
from services.transports import (CloudTransport, SandboxTransport, SendError, Throttle, make_transport,
                                 retry_delay)
from services.whatsapp_payloads import PayloadError, build_message
from tests.fakes.graph import CORPUS_API, corpus_api

TOKEN = "test-token"
PHONE_ID = "1122334455667"
PATH = f"/v25.0/{PHONE_ID}/messages"
TO = "5215512345678"
ACCEPTED = "send_template_success_message_status_accepted__pywa.json"


def ok(wamid: str = "wamid.TEST"):
    return 200, {"messaging_product": "whatsapp", "contacts": [{"input": TO, "wa_id": TO}],
                 "messages": [{"id": wamid}]}


@pytest.fixture
def client(graph):
    return GraphClient(graph.url, "v25.0", TOKEN, PHONE_ID, timeout=2.0)


@pytest.fixture
def transport(client):
    return CloudTransport(client, PHONE_ID)


def sent_bodies(graph) -> list[dict]:
    return [json.loads(call["body"]) for call in graph.calls("POST", PATH)]


# --- success -------------------------------------------------------------------------------------

def test_send_template_returns_wamid_and_posts_exact_body(graph, transport):
    answer = corpus_api(ACCEPTED)
    graph.script("POST", PATH, (200, answer))
    content = {"name": "pedido_listo", "language": "es_MX",
               "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}

    wamid = transport.send(TO, "template", None, content)

    assert wamid == answer["messages"][0]["id"] == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    [call] = graph.calls()
    assert call["method"] == "POST" and call["path"] == PATH
    assert call["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert call["headers"]["Content-Type"] == "application/json"
    assert json.loads(call["body"]) == build_message(TO, "template", None, content)


@pytest.mark.parametrize("kind,text,content,reply_to", [
    ("text", "Hola, visita https://ejemplo.mx", {}, "wamid.IN1"),
    ("image", "Ticket", {"media_id": "1037543291543636"}, None),
    ("list", "Elige", {"options": ["Pedidos", {"id": "f", "title": "Facturas", "description": "CFDI"}]}, None),
    ("buttons", "¿Confirmas?", {"options": ["Sí", "No"], "header": "Cita"}, "wamid.IN2"),
    ("reaction", None, {"message_id": "wamid.IN3", "emoji": "👍"}, None),
])
def test_each_kind_goes_out_as_built(graph, transport, kind, text, content, reply_to):
    graph.script("POST", PATH, ok(f"wamid.OUT.{kind}"))
    assert transport.send(TO, kind, text, content, reply_to=reply_to) == f"wamid.OUT.{kind}"
    assert sent_bodies(graph) == [build_message(TO, kind, text, content, reply_to)]


def test_mark_read_and_typing(graph, transport):
    graph.script("POST", PATH, (200, {"success": True}), (200, {"success": True}))
    assert transport.mark_read("wamid.IN9") is True
    assert transport.mark_read("wamid.IN9", typing=True) is True
    assert sent_bodies(graph) == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN9"},
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN9",
         "typing_indicator": {"type": "text"}}]


def test_invalid_payload_is_refused_before_any_request(graph, transport):
    with pytest.raises(PayloadError, match="máximo 10 opciones"):
        transport.send(TO, "list", "Elige", {"options": [str(n) for n in range(11)]})
    assert graph.calls() == []


def test_answer_without_message_id_is_an_error(graph, transport):
    graph.script("POST", PATH, (200, {"messaging_product": "whatsapp", "messages": []}))
    with pytest.raises(SendError, match="sin id de mensaje") as caught:
        transport.send(TO, "text", "hola", {})
    assert caught.value.transient is False


# --- corpus errors -------------------------------------------------------------------------------

# file → (HTTP status Meta uses, code, title, details, transient)
CORPUS_ERRORS = {
    "error_100_invalid_parameter_documented_example__meta-docs.json":
        (400, 100, "(#100) Invalid parameter", "Message must be a template message.", False),
    "error_130429_rate_limit_documented_example__meta-docs.json":
        (429, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.", True),
    "error_131047_reengagement_object__pywa.json":
        (400, 131047, "Re-engagement message", "Message failed to send because more than 24 hours have passed "
                                               "since the customer last replied to this number.", False),
    "error_131053_media_upload_object__pywa.json":
        (400, 131053, "Media upload error", "Downloading media from weblink failed with http code 429, status "
                                            "message Too Many Requests", False),
    "error_190_subcode460_graph_generic_example__meta-docs.json":
        (401, 190, "Message describing the error", "A message", False),
    "error_190_subcode463_expired_token_inner_object__pywa.json":
        (401, 190, "Error validating access token: Session has expired on Friday, 26-Apr-24 06:00:00 PDT. "
                   "The current time is Sunday, 28-Apr-24 03:40:10 PDT.", None, False),
}


def test_every_corpus_error_file_is_covered():
    assert set(CORPUS_ERRORS) == {path.name for path in Path(CORPUS_API).glob("error_*.json")}


@pytest.mark.parametrize("name", sorted(CORPUS_ERRORS))
def test_corpus_error_becomes_classified_send_error(graph, transport, name):
    status, code, title, details, transient = CORPUS_ERRORS[name]
    body = corpus_api(name)
    if "error" not in body:              # pywa keeps only the inner object; Graph wraps it in "error"
        body = {"error": body}
    graph.script("POST", PATH, (status, body))

    with pytest.raises(SendError) as caught:
        transport.send(TO, "text", "hola", {})

    error = caught.value
    assert (error.code, error.title, error.details, error.transient) == (code, title, details, transient)
    assert error.status == status
    assert str(code) in str(error) and title in str(error)
    if details:
        assert details in str(error)
    assert (retry_delay(error, 0) is not None) == transient


@pytest.mark.parametrize("status,code,transient", [
    (400, 131056, True),    # pair rate limit
    (400, 131057, True),    # account in maintenance / throughput upgrade
    (400, 80007, True),     # WABA rate limit
    (400, 4, True),         # app rate limit
    (500, 131000, True),    # something went wrong
    (400, 131000, True),
    (503, 2, True),         # service temporarily unavailable
    (400, 131026, False),   # undeliverable
    (400, 131051, False),   # unsupported message type
    (400, 132001, False),   # template does not exist
    (400, 999999, False),   # anything else with a 4xx
    (403, 10, False),       # permission denied
    (500, 131047, False),   # a permanent code stays permanent even on 5xx
])
def test_meta_codes_classification(graph, transport, status, code, transient):
    graph.script("POST", PATH, (status, {"error": {"message": f"(#{code}) prueba", "type": "OAuthException",
                                                   "code": code, "error_data": {"details": "detalle"},
                                                   "fbtrace_id": "X"}}))
    with pytest.raises(SendError) as caught:
        transport.send(TO, "text", "hola", {})
    assert caught.value.code == code and caught.value.transient is transient
    assert caught.value.details == "detalle" and caught.value.title == f"(#{code}) prueba"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_http_error_without_meta_code_is_transient(graph, transport, status):
    graph.script("POST", PATH, (status, b"<html>Error</html>", {"Content-Type": "text/html"}))
    with pytest.raises(SendError) as caught:
        transport.send(TO, "text", "hola", {})
    assert caught.value.transient is True and caught.value.code is None and caught.value.status == status
    assert str(status) in str(caught.value)


def test_http_4xx_without_meta_code_is_permanent(graph, transport):
    graph.script("POST", PATH, (404, b"not found", {"Content-Type": "text/plain"}))
    with pytest.raises(SendError) as caught:
        transport.send(TO, "text", "hola", {})
    assert caught.value.transient is False and caught.value.status == 404


def test_429_retry_after_header_is_kept_and_is_a_floor(graph, transport):
    graph.script("POST", PATH, (429, corpus_api("error_130429_rate_limit_documented_example__meta-docs.json"),
                                {"Retry-After": "7"}))
    with pytest.raises(SendError) as caught:
        transport.send(TO, "text", "hola", {})
    assert caught.value.retry_after == 7.0
    assert retry_delay(caught.value, 0) == 7.0
    assert retry_delay(caught.value, 4) == 16.0


def test_connection_refused_is_transient(graph, transport):
    graph.stop()
    with pytest.raises(SendError) as caught:
        transport.send(TO, "text", "hola", {})
    assert caught.value.transient is True and caught.value.code is None and caught.value.status is None
    assert "ConnectionError" in str(caught.value)


def test_timeout_is_transient():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)                      # accepts the TCP connection, never answers
    try:
        client = GraphClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "v25.0", TOKEN, PHONE_ID, timeout=0.3)
        started = time.perf_counter()
        with pytest.raises(SendError) as caught:
            CloudTransport(client, PHONE_ID).send(TO, "text", "hola", {})
        assert time.perf_counter() - started < 5
        assert caught.value.transient is True and "Timeout" in str(caught.value)
    finally:
        silent.close()


# --- retry_delay -----------------------------------------------------------------------------------

def test_retry_delay_pair_rate_is_4_to_the_attempt():
    error = SendError("par", code=131056, title="pair rate", transient=True)
    assert [retry_delay(error, n) for n in range(4)] == [1.0, 4.0, 16.0, 64.0]
    assert retry_delay(error, 20) == 3600.0


def test_retry_delay_other_transient_backs_off_and_permanent_does_not_retry():
    throughput = SendError("tp", code=130429, title="Rate limit hit", transient=True)
    assert [retry_delay(throughput, n, base=0.5) for n in range(3)] == [0.5, 1.0, 2.0]
    assert retry_delay(SendError("24h", code=131047, title="Re-engagement", transient=False), 0) is None


# --- throttle --------------------------------------------------------------------------------------

def test_throttle_20_per_second_40_sends_take_about_two_seconds(graph, client):
    graph.script("POST", PATH, *[ok(f"wamid.{n}") for n in range(40)])
    transport = CloudTransport(client, PHONE_ID, rate_per_second=20)
    started = time.perf_counter()
    ids = [transport.send(TO, "text", f"mensaje {n}", {}) for n in range(40)]
    elapsed = time.perf_counter() - started
    assert ids == [f"wamid.{n}" for n in range(40)]
    assert elapsed >= 1.9, elapsed
    assert elapsed < 6, elapsed


def test_throttle_is_shared_by_threads(graph, client):
    graph.script("POST", PATH, *[ok(f"wamid.{n}") for n in range(40)])
    transport = CloudTransport(client, PHONE_ID, rate_per_second=20)
    ids, errors = [], []

    def worker(n):
        try:
            for i in range(10):
                ids.append(transport.send(TO, "text", f"hilo {n} mensaje {i}", {}))
        except Exception as error:   # noqa: BLE001 — surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    elapsed = time.perf_counter() - started
    assert not errors and len(ids) == 40 and len(set(ids)) == 40
    assert elapsed >= 1.9, elapsed


def test_throttle_never_exceeds_rate_in_any_window():
    throttle = Throttle(50)
    stamps, lock = [], threading.Lock()

    def worker():
        for _ in range(15):
            throttle.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    stamps.sort()
    assert len(stamps) == 60
    # 60 acquisitions at 50/s from 4 threads: at least 59 intervals of 20 ms between first and last
    assert stamps[-1] - stamps[0] >= 59 * 0.02 * 0.95


def test_throttle_schedule_and_burst():
    now = [100.0]
    throttle = Throttle(10, clock=lambda: now[0])
    assert [round(throttle.reserve(), 6) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    now[0] += 5                       # idle time does not bank tokens beyond the burst
    assert [round(throttle.reserve(), 6) for _ in range(2)] == [0.0, 0.1]
    bursty = Throttle(10, burst=3, clock=lambda: now[0])
    assert [round(bursty.reserve(), 6) for _ in range(5)] == [0.0, 0.0, 0.0, 0.1, 0.2]


def test_throttle_without_pressure_does_not_wait():
    throttle = Throttle(80)
    assert throttle.acquire() == 0.0
    time.sleep(0.05)
    assert throttle.acquire() == 0.0
    with pytest.raises(ValueError):
        Throttle(0)


# --- sandbox ---------------------------------------------------------------------------------------

def test_sandbox_returns_generated_ids_and_sends_nothing(graph):
    sandbox = SandboxTransport()
    first = sandbox.send(TO, "text", "hola", {})
    second = sandbox.send(TO, "list", "Elige", {"options": ["A", "B"]}, reply_to="wamid.X")
    assert re.fullmatch(r"sandbox\.[0-9a-f]{32}", first) and re.fullmatch(r"sandbox\.[0-9a-f]{32}", second)
    assert first != second
    assert sandbox.mark_read("wamid.X") is True
    assert graph.calls() == []
    assert [payload for _, payload in sandbox.sent] == [
        build_message(TO, "text", "hola", {}), build_message(TO, "list", "Elige", {"options": ["A", "B"]},
                                                             "wamid.X")]


def test_sandbox_validates_like_cloud():
    with pytest.raises(PayloadError, match="de 1 a 3 botones"):
        SandboxTransport().send(TO, "buttons", "x", {"options": ["A", "B", "C", "D"]})


def test_make_transport_follows_config(client):
    assert isinstance(make_transport({"WHATSAPP_TRANSPORT": "sandbox"}), SandboxTransport)
    cloud = make_transport({"WHATSAPP_TRANSPORT": "cloud", "PHONE_NUMBER_ID": PHONE_ID}, client)
    assert isinstance(cloud, CloudTransport) and cloud.throttle.rate == 80.0
