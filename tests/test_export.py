import csv
import io
import json

from tests.conftest import CORPUS, post_webhook, text_payload, wait_for_jobs

REQUIRED = {"id", "wamid", "direction", "sender", "type", "text", "created_at", "status", "error"}


def post_all(client):
    for index, body in enumerate(["Hola, ¿cuánto cuesta?", "Mañana paso", 'dijo "sí", ok']):
        post_webhook(client, json.dumps(text_payload(f"wamid.E{index}", numero="5491100000000", body=body,
                                                     name="Ñandú")).encode())


def test_conversation_json_has_every_message_in_order(app, admin_client):
    post_all(admin_client)
    wait_for_jobs(app)
    data = admin_client.get("/export/conversation/5491100000000").get_json()
    assert data["numero"] == "5491100000000" and data["alias"] is None
    inbound = [m for m in data["messages"] if m["direction"] == "in"]
    assert [m["text"] for m in inbound] == ["Hola, ¿cuánto cuesta?", "Mañana paso", 'dijo "sí", ok']
    replies = [m for m in data["messages"] if m["direction"] == "out"]
    assert len(replies) == 3 and {(m["sender"], m["status"]) for m in replies} == {("bot", "delivered")}
    for message in inbound:
        assert REQUIRED <= set(message)
        assert (message["direction"], message["sender"], message["type"], message["status"]) == \
            ("in", "customer", "text", "received")
        assert message["error"] is None and message["created_at"].endswith("Z")


def test_conversation_csv_has_bom_accents_and_quotes(app, admin_client):
    post_all(admin_client)
    wait_for_jobs(app)
    response = admin_client.get("/export/conversation/5491100000000.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["text"] for r in rows if r["direction"] == "in"] == ["Hola, ¿cuánto cuesta?", "Mañana paso",
                                                                   'dijo "sí", ok']
    assert rows[0]["numero"] == "5491100000000" and rows[0]["wamid"] == "wamid.E0"


def test_media_and_failed_status_are_exported(app, admin_client, graph):
    raw = (CORPUS / "meta" / "webhooks" / "image__pywa.json").read_bytes()
    post_webhook(admin_client, raw)
    wait_for_jobs(app)
    data = admin_client.get("/export/conversation/972987654321").get_json()
    (message,) = [m for m in data["messages"] if m["direction"] == "in"]
    assert message["type"] == "image" and message["media"]["mime"] == "image/jpeg"
    assert message["media"]["status"] == "failed" and message["media"]["error"]


def test_unknown_number_is_404_json(admin_client):
    response = admin_client.get("/export/conversation/000")
    assert response.status_code == 404 and "000" in response.get_json()["error"]
    assert admin_client.get("/export/conversation/000.csv").status_code == 404
