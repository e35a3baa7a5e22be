"""The panel's JSON endpoints, with role limits on every one of them."""
import io
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from extensions import db
from models import Chat, Message, Role
from tests.conftest import csrf_token, login, post_webhook, text_payload, wait_for_jobs

VENTAS, SOPORTE = "5215500000001", "5215500000002"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
MEDIA_UPLOAD = "/v25.0/1122334455667/media"


def seed_chats(app) -> dict:
    """Two chats: one attached to role ventas, one to soporte."""
    client = app.test_client()
    for index, (numero, role) in enumerate(((VENTAS, "ventas"), (SOPORTE, "soporte"))):
        post_webhook(client, json.dumps(text_payload(f"wamid.P{index}", numero=numero, body="hola")).encode())
    wait_for_jobs(app)
    ids = {}
    with app.app_context():
        for numero, name in ((VENTAS, "ventas"), (SOPORTE, "soporte")):
            chat = db.session.scalar(select(Chat).filter_by(numero=numero))
            role = db.session.scalar(select(Role).filter_by(name=name)) or Role(name=name, keywords="")
            chat.roles = [role]
            ids[numero] = chat.id
        db.session.commit()
    return ids


@pytest.fixture
def chats(app):
    return seed_chats(app)


@pytest.fixture
def cloud(make_app):
    """Files are sent through the (fake) Graph API: uploaded first, then sent by media id."""
    return make_app(WHATSAPP_TRANSPORT="cloud")


@pytest.fixture
def cloud_chats(cloud):
    return seed_chats(cloud)


def agent_client(app, make_user, role="ventas", username="vera"):
    make_user(username, "clave-de-agente", roles=[role])
    client = app.test_client()
    assert login(client, username, "clave-de-agente").status_code == 302
    return client, {"X-CSRFToken": csrf_token(client, "/")}


def test_json_that_is_not_an_object_is_a_400(app, admin_client, chats):
    headers = {"X-CSRFToken": csrf_token(admin_client, "/")}
    for action in ("mensajes", "alias", "roles", "respuesta-rapida"):
        response = admin_client.post(f"/api/chats/{chats[VENTAS]}/{action}", data="[1, 2]",
                                     content_type="application/json", headers=headers)
        assert response.status_code == 400, action
        assert "objeto JSON" in response.get_json()["error"]


def test_agent_sees_only_chats_of_their_roles(app, make_user, chats):
    client, _ = agent_client(app, make_user)
    listed = client.get("/api/chats").get_json()["chats"]
    assert [c["numero"] for c in listed] == [VENTAS]
    page = client.get("/").get_data(as_text=True)
    assert f'/chats/{chats[VENTAS]}"' in page and f'/chats/{chats[SOPORTE]}"' not in page


def test_every_chat_route_refuses_another_roles_chat(app, make_user, chats):
    client, headers = agent_client(app, make_user)
    other = chats[SOPORTE]
    with app.app_context():
        media_id = db.session.scalar(select(Message.id).filter_by(chat_id=other))
    gets = [f"/chats/{other}", f"/api/chats/{other}", f"/api/chats/{other}/mensajes", f"/media/{media_id}",
            f"/api/chats/{other}/mensajes/{media_id}",
            f"/export/conversation/{SOPORTE}", f"/export/conversation/{SOPORTE}.csv"]
    for path in gets:
        assert client.get(path).status_code in (403, 404), path
    posts = ["mensajes", "tomar", "devolver", "cerrar", "leido", "alias", "roles", "respuesta-rapida"]
    for action in posts:
        response = client.post(f"/api/chats/{other}/{action}", json={"texto": "x", "alias": "x"}, headers=headers)
        assert response.status_code in (403, 404), action
    upload = client.post(f"/api/chats/{other}/adjunto", data={"archivo": (io.BytesIO(PNG), "foto.png")},
                         headers=headers, content_type="multipart/form-data")
    assert upload.status_code == 404
    with app.app_context():
        chat = db.session.get(Chat, other)
        assert chat.state == "bot" and chat.alias is None
        assert db.session.scalar(select(Message).filter_by(chat_id=other, sender="agent")) is None


def test_agent_without_roles_sees_nothing_and_admin_sees_all(app, make_user, admin_client, chats):
    make_user("nadie", "clave-de-nadie")
    client = app.test_client()
    login(client, "nadie", "clave-de-nadie")
    assert client.get("/api/chats").get_json()["chats"] == []
    assert len(admin_client.get("/api/chats").get_json()["chats"]) == 2


def test_agent_reply_takes_over_and_the_bot_stays_quiet(app, make_user, chats):
    client, headers = agent_client(app, make_user)
    chat_id = chats[VENTAS]
    response = client.post(f"/api/chats/{chat_id}/mensajes", json={"texto": "Hola, soy Vera"}, headers=headers)
    assert response.status_code == 201
    wait_for_jobs(app)
    summary = client.get(f"/api/chats/{chat_id}").get_json()
    assert summary["state"] == "human"
    post_webhook(app.test_client(), json.dumps(text_payload("wamid.P9", numero=VENTAS, body="gracias")).encode())
    wait_for_jobs(app)
    messages = client.get(f"/api/chats/{chat_id}/mensajes").get_json()["messages"]
    assert [(m["sender"], m["text"]) for m in messages[-2:]] == [("agent", "Hola, soy Vera"), ("customer", "gracias")]
    assert messages[-2]["status"] == "delivered"
    assert client.post(f"/api/chats/{chat_id}/devolver", headers=headers).get_json()["chat"]["state"] == "bot"


def test_reply_errors_are_clear(app, make_user, chats):
    client, headers = agent_client(app, make_user)
    chat_id = chats[VENTAS]
    assert "Escriba" in client.post(f"/api/chats/{chat_id}/mensajes", json={"texto": " "},
                                    headers=headers).get_json()["error"]
    assert client.post(f"/api/chats/{chat_id}/mensajes", json={"texto": "x", "tipo": "raro"},
                       headers=headers).status_code == 400
    assert client.post(f"/api/chats/{chat_id}/mensajes", json={"texto": "sin token"}).status_code == 400
    with app.app_context():
        chat = db.session.get(Chat, chat_id)
        chat.last_inbound_at = chat.last_inbound_at.replace(year=2020)
        db.session.commit()
    outside = client.post(f"/api/chats/{chat_id}/mensajes", json={"texto": "hola"}, headers=headers)
    assert outside.status_code == 400 and "24 horas" in outside.get_json()["error"]


def test_alias_close_and_read(app, make_user, chats):
    client, headers = agent_client(app, make_user)
    chat_id = chats[VENTAS]
    assert client.post(f"/api/chats/{chat_id}/alias", json={"alias": "Doña Ana"},
                       headers=headers).get_json()["chat"]["name"] == "Doña Ana"
    assert client.post(f"/api/chats/{chat_id}/leido", headers=headers).get_json()["chat"]["unread"] == 0
    assert client.post(f"/api/chats/{chat_id}/cerrar", headers=headers).get_json()["chat"]["state"] == "closed"
    assert client.post(f"/api/chats/{chat_id}/roles", json={"roles": []}, headers=headers).status_code == 403


def test_history_pages_from_the_database(app, admin_client, chats):
    chat_id = chats[VENTAS]
    for index in range(60):
        post_webhook(admin_client, json.dumps(text_payload(f"wamid.H{index}", numero=VENTAS,
                                                           body=f"m{index}")).encode())
    wait_for_jobs(app)
    newest = admin_client.get(f"/api/chats/{chat_id}/mensajes").get_json()["messages"]
    assert len(newest) == 50
    older = admin_client.get(f"/api/chats/{chat_id}/mensajes?antes={newest[0]['id']}").get_json()["messages"]
    assert older and older[-1]["id"] < newest[0]["id"]
    assert {m["id"] for m in older}.isdisjoint({m["id"] for m in newest})


def test_live_events_reach_only_allowed_users(app, make_user, chats):
    import requests
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    received, ready = {}, {}

    def listen(username):
        session = requests.Session()
        session.post(f"{base}/login", data={"username": username, "password": "clave-de-agente",
                                            "csrf_token": csrf_token_from(session, base)})
        lines = received[username] = []
        try:
            with session.get(f"{base}/eventos", stream=True, timeout=(2, 2)) as response:
                ready[username].set()
                for line in response.iter_lines(decode_unicode=True):
                    lines.append(line)
                    if line.startswith("data:") and f'"chat_id": {chats[SOPORTE]}' in line:
                        return
        except requests.RequestException:
            return

    try:
        make_user("vera", "clave-de-agente", roles=["ventas"])
        make_user("sara", "clave-de-agente", roles=["soporte"])
        threads = []
        for username in ("vera", "sara"):
            ready[username] = threading.Event()
            threads.append(threading.Thread(target=listen, args=(username,), daemon=True))
            threads[-1].start()
        assert all(event.wait(5) for event in ready.values())
        post_webhook(app.test_client(), json.dumps(text_payload("wamid.LIVE", numero=SOPORTE, body="urgente")).encode())
        wait_for_jobs(app)
        for thread in threads:
            thread.join(5)
        sara = [json.loads(line[5:]) for line in received["sara"] if line.startswith("data:")]
        vera = [json.loads(line[5:]) for line in received["vera"] if line.startswith("data:")]
        assert any(e["type"] == "message" and e["chat_id"] == chats[SOPORTE] for e in sara)
        assert all(e["chat_id"] != chats[SOPORTE] for e in vera)
    finally:
        server.shutdown()


def csrf_token_from(session, base):
    import re
    page = session.get(f"{base}/login").text
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def attach(client, headers, chat_id, content: bytes, name: str, text: str | None = None):
    data = {"archivo": (io.BytesIO(content), name)}
    if text is not None:
        data["texto"] = text
    return client.post(f"/api/chats/{chat_id}/adjunto", data=data, headers=headers, content_type="multipart/form-data")


def panel_files(media_root: Path) -> list[Path]:
    folder = media_root / "panel"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_an_attachment_is_checked_stored_safely_and_sent(cloud, make_user, cloud_chats, graph, media_root):
    app = cloud
    client, headers = agent_client(app, make_user)
    chat_id = cloud_chats[VENTAS]
    graph.script("POST", MEDIA_UPLOAD, (200, {"id": "media.up.1"}))
    response = attach(client, headers, chat_id, PNG, "../../etc/foto de prueba.png", text="Su comprobante")
    assert response.status_code == 201, response.get_json()
    wait_for_jobs(app)
    [stored] = panel_files(media_root)
    assert stored.suffix == ".png" and "/" not in stored.name and ".." not in stored.name
    message = client.get(f"/api/chats/{chat_id}/mensajes/{response.get_json()['message_id']}").get_json()
    assert (message["type"], message["text"], message["status"]) == ("image", "Su comprobante", "sent")
    assert message["media"]["url"] == f"/media/{message['id']}"
    download = client.get(message["media"]["url"])
    assert download.status_code == 200 and download.data == PNG and download.mimetype == "image/png"
    [sent] = [m for m in graph.sent() if m["type"] == "image"]
    assert sent["image"] == {"id": "media.up.1", "caption": "Su comprobante"}
    assert client.get(f"/api/chats/{chat_id}").get_json()["state"] == "human"


def test_with_the_sandbox_transport_an_attachment_is_delivered_not_failed(app, make_user, chats, media_root):
    client, headers = agent_client(app, make_user)
    response = attach(client, headers, chats[VENTAS], PNG, "plano.png", text="Su plano")
    assert response.status_code == 201, response.get_json()
    wait_for_jobs(app)
    message = client.get(f"/api/chats/{chats[VENTAS]}/mensajes/{response.get_json()['message_id']}").get_json()
    assert (message["type"], message["status"], message["error"]) == ("image", "delivered", None)
    assert client.get(message["media"]["url"]).data == PNG
    sandbox = app.extensions["transport"]
    [(_, payload)] = [sent for sent in sandbox.sent if sent[1]["type"] == "image"]
    assert payload["image"]["id"].startswith("local:panel/") and payload["image"]["caption"] == "Su plano"


def test_a_bad_attachment_is_refused_with_the_reason_and_nothing_kept(app, make_user, chats, media_root):
    client, headers = agent_client(app, make_user)
    chat_id = chats[VENTAS]
    app.config["MEDIA_MAX_BYTES"] = 1024 * 1024
    cases = [(b"MZ" + b"\0" * 10, "programa.exe", "Tipo de archivo no admitido"),
             (b"hola, no soy una imagen", "foto.png", "no corresponde"),
             (PNG + b"\0" * (1024 * 1024 + 10), "grande.png", "supera el máximo de 1 MB"),
             (b"", "vacio.pdf", "vacío")]
    for content, name, reason in cases:
        response = attach(client, headers, chat_id, content, name)
        assert response.status_code == 400 and reason in response.get_json()["error"], (name, response.get_json())
    huge = attach(client, headers, chat_id, PNG + b"\0" * (3 * 1024 * 1024), "enorme.png")
    assert huge.status_code == 413 and "supera el máximo" in huge.get_json()["error"]
    missing = client.post(f"/api/chats/{chat_id}/adjunto", data={}, headers=headers)
    assert missing.status_code == 400 and "Elija un archivo" in missing.get_json()["error"]
    no_token = client.post(f"/api/chats/{chat_id}/adjunto", data={"archivo": (io.BytesIO(PNG), "a.png")},
                           content_type="multipart/form-data")
    assert no_token.status_code == 400 and "CSRF" in no_token.get_json()["error"]
    with app.app_context():
        chat = db.session.get(Chat, chat_id)
        chat.last_inbound_at = chat.last_inbound_at.replace(year=2020)
        db.session.commit()
    outside = attach(client, headers, chat_id, PNG, "foto.png")
    assert outside.status_code == 400 and "24 horas" in outside.get_json()["error"]
    assert panel_files(media_root) == []
    with app.app_context():
        assert db.session.scalar(select(Message).filter_by(chat_id=chat_id, sender="agent")) is None


def test_a_quick_reply_sends_its_text_and_a_copy_of_its_files(cloud, make_user, cloud_chats, graph, media_root):
    from services.quick_replies import create_quick_reply
    app, chats = cloud, cloud_chats
    from services.rules.media import Upload
    with app.test_request_context():
        quick = create_quick_reply("Horario", "Abrimos de *9 a 18*", [Upload("horario.png", io.BytesIO(PNG))]).id
    client, headers = agent_client(app, make_user)
    chat_id = chats[VENTAS]
    graph.script("POST", MEDIA_UPLOAD, (200, {"id": "media.up.2"}))
    page = client.get(f"/chats/{chat_id}").get_data(as_text=True)
    assert f'data-id="{quick}"' in page and "Horario" in page
    response = client.post(f"/api/chats/{chat_id}/respuesta-rapida", json={"id": quick}, headers=headers)
    assert response.status_code == 201, response.get_json()
    wait_for_jobs(app)
    messages = client.get(f"/api/chats/{chat_id}/mensajes").get_json()["messages"]
    assert [(m["type"], m["text"], m["status"]) for m in messages[-2:]] == [
        ("text", "Abrimos de *9 a 18*", "sent"), ("image", None, "sent")]
    [copy] = panel_files(media_root)
    assert copy.read_bytes() == PNG and client.get(messages[-1]["media"]["url"]).data == PNG
    gone = client.post(f"/api/chats/{chat_id}/respuesta-rapida", json={"id": quick + 99}, headers=headers)
    assert gone.status_code == 400 and "ya no existe" in gone.get_json()["error"]


def test_media_paths_never_leave_media_root(app, admin_client, chats, media_root):
    secret = media_root.parent / "secreto.txt"
    secret.write_text("no")
    with app.app_context():
        chat_id = chats[VENTAS]
        inbound = Message(chat_id=chat_id, direction="in", sender="customer", type="document", status="received",
                          media_id="m.x", media_path="../secreto.txt", media_status="ok", media_mime="text/plain")
        outbound = Message(chat_id=chat_id, direction="out", sender="agent", type="document", status="sent",
                           content=json.dumps({"media_path": "../secreto.txt"}))
        absolute = Message(chat_id=chat_id, direction="out", sender="agent", type="document", status="sent",
                           content=json.dumps({"media_path": str(secret)}))
        db.session.add_all([inbound, outbound, absolute])
        db.session.commit()
        ids = [inbound.id, outbound.id, absolute.id]
    for message_id in ids:
        assert admin_client.get(f"/media/{message_id}").status_code == 404


def test_customer_text_is_escaped_in_the_page(app, make_user, chats):
    post_webhook(app.test_client(), json.dumps(text_payload("wamid.XSS", numero=VENTAS,
                                                            body="<script>alert(1)</script>")).encode())
    wait_for_jobs(app)
    client, _ = agent_client(app, make_user)
    page = client.get(f"/chats/{chats[VENTAS]}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    assert 'id="ui-texts"' in page and "Escribe un mensaje" in page


def test_the_chat_list_pages_with_a_keyset(app, make_user, chats):
    from datetime import timedelta
    from models.types import utcnow
    with app.app_context():
        ventas = db.session.scalar(select(Role).filter_by(name="ventas"))
        start = utcnow().replace(microsecond=0)
        # Pairs with the same time, so the cursor needs the id to break ties.
        db.session.add_all(Chat(numero=f"52155999{index:05d}", state="bot", roles=[ventas],
                                last_message_at=start - timedelta(seconds=index // 2), unread_count=0)
                           for index in range(120))
        db.session.commit()
    client, _ = agent_client(app, make_user)
    seen, cursor = [], None
    for _ in range(10):
        url = "/api/chats" + (f"?antes={cursor['last_message_at']}|{cursor['id']}" if cursor else "")
        page = client.get(url).get_json()["chats"]
        seen += page
        if len(page) < 50:
            break
        cursor = page[-1]
    assert len(seen) == 121 and len({c["id"] for c in seen}) == 121
    keys = [(c["last_message_at"], c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=True)
    assert client.get("/api/chats?antes=ayer").status_code == 400


def test_agent_search_finds_own_chat_behind_many_newer_matches_in_other_roles(app, make_user, chats):
    """The text search keeps the newest 200 matching messages: an agent's are counted among their own chats only."""
    with app.app_context():
        db.session.add(Message(chat_id=chats[VENTAS], direction="in", sender="customer", type="text",
                               text="mi pedido no llega", status="received"))
        db.session.flush()
        db.session.add_all(Message(chat_id=chats[SOPORTE], direction="in", sender="customer", type="text",
                                   text=f"pedido número {n}", status="received") for n in range(250))
        db.session.commit()
    client, _ = agent_client(app, make_user)

    found = client.get("/api/chats", query_string={"q": "pedido"}).get_json()["chats"]

    assert [chat["numero"] for chat in found] == [VENTAS]


def test_search_matches_number_and_text_and_treats_wildcards_as_text(app, admin_client, chats):
    post_webhook(admin_client, json.dumps(text_payload("wamid.SRCH", numero=VENTAS, body="descuento del 50% hoy")).encode())
    wait_for_jobs(app)

    def found(query):
        return {chat["id"] for chat in admin_client.get("/api/chats", query_string={"q": query}).get_json()["chats"]}

    assert found(VENTAS[-6:]) == {chats[VENTAS]}
    assert found("50% hoy") == {chats[VENTAS]}
    assert found("%") == {chats[VENTAS]}  # only the message that really has a '%'
    assert found("_") == set()
