"""Exports: a conversation with every message type round-trips through JSON and CSV; range exports (CSV and
ZIP of JSON) keep accents and the viewer's role limits."""
import csv
import io
import json
import zipfile
from datetime import datetime

import pytest

from extensions import db
from models import Chat, Message, Rule
from tests.tablero_data import A, AGENT, AGENT_PASSWORD, B, C, RANGE, login_as, seed_dashboard

NUMERO = "5491188887777"
EVERY_TYPE = [
    ("in", "customer", "text", "¿Tienen envío a Córdoba? Ñandú",
     {"sentiment_label": "neutral", "sentiment_score": 0.55}),
    ("in", "customer", "image", "foto del mesón", {"media_id": "img-1", "media_mime": "image/jpeg",
                                                   "media_path": "2026/img-1.jpg", "media_size": 1234,
                                                   "media_status": "ok"}),
    ("in", "customer", "audio", None, {"media_id": "aud-1", "media_mime": "audio/ogg", "media_path": "2026/aud-1.ogg",
                                       "media_status": "ok", "transcription": "quiero un presupuesto, señor",
                                       "transcription_status": "ok", "sentiment_label": "positivo",
                                       "sentiment_score": 0.81}),
    ("in", "customer", "video", None, {"media_id": "vid-1", "media_mime": "video/mp4", "media_status": "failed",
                                       "media_error": "descarga fallida: 404"}),
    ("in", "customer", "document", "factura.pdf", {"media_id": "doc-1", "media_mime": "application/pdf",
                                                   "media_path": "2026/doc-1.pdf", "media_status": "ok"}),
    ("in", "customer", "sticker", None, {"media_id": "stk-1", "media_mime": "image/webp"}),
    ("in", "customer", "location", "Av. Corrientes 1234", {"content": json.dumps(
        {"latitude": -34.6, "longitude": -58.38, "name": "Oficina", "address": "Av. Corrientes 1234"})}),
    ("in", "customer", "contacts", None, {"content": json.dumps(
        [{"name": {"formatted_name": "José Pérez"}, "phones": [{"phone": "+54 9 11 5555-0000"}]}],
        ensure_ascii=False)}),
    ("in", "customer", "interactive", "Cotizar mesón",
     {"content": json.dumps({"button_reply": {"id": "cot", "title": "Cotizar mesón"}}, ensure_ascii=False)}),
    ("in", "customer", "reaction", "👍", {"context_wamid": "wamid.X1"}),
    ("out", "bot", "text", "¡Hola! Elija una opción", {"status": "read", "step": "bienvenida", "rule": True}),
    ("out", "bot", "interactive", "Menú", {"status": "delivered", "step": "bienvenida", "content": json.dumps(
        {"type": "list", "sections": [{"rows": [{"id": "1", "title": "Cotizar"}]}]})}),
    ("out", "agent", "image", "Así queda", {"status": "failed", "error_code": 131053,
                                            "error_title": "Media upload error", "error_detail": "archivo dañado",
                                            "media_path": "2026/out.jpg", "media_mime": "image/jpeg", "agent": True}),
    ("out", "agent", "document", "presupuesto.pdf", {"status": "sent", "media_path": "2026/p.pdf",
                                                     "media_mime": "application/pdf", "agent": True}),
]


@pytest.fixture
def conversation(app, make_user):
    make_user(AGENT, AGENT_PASSWORD, roles=["ventas"])
    with app.app_context():
        from models import User
        agent = db.session.scalar(db.select(User).filter_by(username=AGENT))
        rule = Rule(step="bienvenida", input_text="hola", respuesta="¡Hola! Elija una opción")
        chat = Chat(numero=NUMERO, alias="Señora Núñez", step="bienvenida", roles=list(agent.roles))
        db.session.add_all([rule, chat])
        db.session.flush()
        for index, (direction, sender, kind, text, extra) in enumerate(EVERY_TYPE):
            extra = dict(extra)
            status = extra.pop("status", "received" if direction == "in" else "sent")
            rule_id = rule.id if extra.pop("rule", False) else None
            agent_id = agent.id if extra.pop("agent", False) else None
            db.session.add(Message(chat_id=chat.id, wamid=f"wamid.R{index}", direction=direction, sender=sender,
                                   type=kind, text=text, status=status, rule_id=rule_id, agent_id=agent_id,
                                   created_at=datetime(2026, 4, 1, 12, index), **extra))
        db.session.commit()
        ids = {"rule": rule.id, "agent": agent.id}
        db.session.remove()
    return ids


def test_every_message_type_round_trips_as_json(admin_client, conversation):
    data = admin_client.get(f"/export/conversation/{NUMERO}").get_json()
    assert (data["numero"], data["alias"], data["step"]) == (NUMERO, "Señora Núñez", "bienvenida")
    assert [(m["direction"], m["sender"], m["type"], m["text"]) for m in data["messages"]] == \
        [row[:4] for row in EVERY_TYPE]
    by_type = {(m["direction"], m["type"]): m for m in data["messages"]}
    audio = by_type[("in", "audio")]
    assert audio["transcription"] == "quiero un presupuesto, señor" and audio["transcription_status"] == "ok"
    assert audio["sentiment"] == {"label": "positivo", "score": 0.81}
    assert audio["media"] == {"id": "aud-1", "mime": "audio/ogg", "path": "2026/aud-1.ogg",
                              "url": f"/media/{audio['id']}", "size": None, "status": "ok", "error": None}
    assert by_type[("in", "video")]["media"]["error"] == "descarga fallida: 404"
    assert by_type[("in", "video")]["media"]["url"] is None
    assert by_type[("in", "location")]["content"]["latitude"] == -34.6
    assert by_type[("in", "contacts")]["content"][0]["name"]["formatted_name"] == "José Pérez"
    assert by_type[("in", "reaction")]["context_wamid"] == "wamid.X1"
    welcome = by_type[("out", "text")]
    assert (welcome["step"], welcome["rule_id"], welcome["status"]) == ("bienvenida", conversation["rule"], "read")
    failed = by_type[("out", "image")]
    assert failed["error"] == {"code": 131053, "title": "Media upload error", "detail": "archivo dañado"}
    assert (failed["agent_id"], failed["agent"]) == (conversation["agent"], AGENT)
    assert all(m["created_at"].startswith("2026-04-01T12:") and m["created_at"].endswith("Z")
               for m in data["messages"])


def test_every_message_type_round_trips_as_csv(admin_client, conversation):
    json_messages = admin_client.get(f"/export/conversation/{NUMERO}").get_json()["messages"]
    raw = admin_client.get(f"/export/conversation/{NUMERO}.csv").get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(EVERY_TYPE)
    for row, message in zip(rows, json_messages):
        assert row["numero"] == NUMERO and row["alias"] == "Señora Núñez"
        for column in ("wamid", "direction", "sender", "type", "text", "status", "step", "transcription",
                       "transcription_status", "context_wamid", "agent", "created_at"):
            assert row[column] == (message[column] or ""), column
        assert row["sentiment_label"] == ((message["sentiment"] or {}).get("label") or "")
        assert row["media_url"] == ((message["media"] or {}).get("url") or "")
        assert row["error_code"] == str((message["error"] or {}).get("code") or "")
        assert (json.loads(row["content"]) if row["content"] else None) == message["content"]
    assert rows[0]["text"] == "¿Tienen envío a Córdoba? Ñandú"
    assert rows[2]["transcription"] == "quiero un presupuesto, señor" and rows[2]["sentiment_score"] == "0.81"
    assert rows[12]["error_title"] == "Media upload error" and rows[12]["agent"] == AGENT


def test_agent_cannot_export_another_roles_chat(app):
    ids = seed_dashboard(app)
    client = app.test_client()
    login_as(client, AGENT, AGENT_PASSWORD)
    assert client.get(f"/export/conversation/{A}").status_code == 200
    for numero in (B, C):
        for suffix in ("", ".csv"):
            response = client.get(f"/export/conversation/{numero}{suffix}")
            assert response.status_code == 404 and numero in response.get_json()["error"]
    assert ids["agent"]


def range_rows(client, **params):
    response = client.get("/export/conversaciones.csv", query_string={**RANGE, **params})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_range_csv_has_accents_and_only_the_range(app, admin_client):
    seed_dashboard(app)
    rows = range_rows(admin_client)
    assert len(rows) == 13 and {r["numero"] for r in rows} == {A, B, C}
    assert "fuera del rango" not in {r["text"] for r in rows}
    assert "El pedido llegó roto, pésimo servicio" in {r["text"] for r in rows}
    assert "¿Qué medidas tiene?" in {r["text"] for r in rows}
    assert len(range_rows(admin_client, desde="2026-02-28")) == 14
    assert {r["numero"] for r in range_rows(admin_client, numero=B)} == {B}


def test_range_exports_only_contain_the_agents_chats(app):
    seed_dashboard(app)
    client = app.test_client()
    login_as(client, AGENT, AGENT_PASSWORD)
    rows = range_rows(client)
    assert len(rows) == 6 and {r["numero"] for r in rows} == {A}
    response = client.get("/export/conversaciones.zip", query_string=RANGE)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.namelist() == [f"conversacion-{A}.json"]


def test_range_zip_has_one_json_per_conversation(app, admin_client):
    seed_dashboard(app)
    response = admin_client.get("/export/conversaciones.zip", query_string=RANGE)
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(f"conversacion-{n}.json" for n in (A, B, C))
    third = json.loads(archive.read(f"conversacion-{C}.json"))
    assert third["numero"] == C and [m["text"] for m in third["messages"]] == [
        None, "No pude escuchar su nota", "Gracias, excelente atención"]
    assert json.loads(archive.read(f"conversacion-{A}.json"))["alias"] == "Ana Mesones"


def test_bad_range_is_400_in_spanish(admin_client):
    for path in ("/export/conversaciones.csv", "/export/conversaciones.zip"):
        response = admin_client.get(path, query_string={"desde": "2026-03-10", "hasta": "2026-03-01"})
        assert response.status_code == 400 and "posterior" in response.get_json()["error"]
    assert admin_client.get("/export/conversaciones.csv").status_code == 200
