import io

import pytest
from sqlalchemy import func, select

from extensions import db
from models import QuickReply, QuickReplyMedia
from services.quick_replies import list_quick_replies
from tests.conftest import csrf_token, login

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
MB = 1024 * 1024
NEW = "/configuracion/botones/nuevo"
XSS = "<script>alert(1)</script>"


def upload(client, action, page=None, files=(), **fields):
    """Post the quick-reply form as a browser would, with the CSRF token of the page that shows it."""
    data = {**fields, "csrf_token": csrf_token(client, page or action),
            "files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post(action, data=data, content_type="multipart/form-data")


def replies(app):
    with app.app_context():
        return [(r.title, r.text, sorted(m.filename for m in r.media))
                for r in db.session.scalars(select(QuickReply).order_by(QuickReply.position, QuickReply.id))]


def reply_id(app, title):
    with app.app_context():
        return db.session.scalar(select(QuickReply.id).filter_by(title=title))


def stored_files(media_root):
    return sorted(p.relative_to(media_root).as_posix() for p in media_root.rglob("*") if p.is_file())


def media_ids(app):
    with app.app_context():
        return list(db.session.scalars(select(QuickReplyMedia.id)))


def make_reply(app, title, text="hola", position=0):
    with app.app_context():
        reply = QuickReply(title=title, text=text, position=position)
        db.session.add(reply)
        db.session.commit()
        return reply.id


@pytest.fixture
def agent_client(app, make_user):
    client = app.test_client()
    make_user("agente", "clave-de-agente", roles=["ventas"])
    assert login(client, "agente", "clave-de-agente").status_code == 302
    return client


def admin_routes(app):
    reply = make_reply(app, "Horario")
    return [("GET", "/configuracion/botones"), ("GET", NEW), ("POST", NEW),
            ("GET", f"/configuracion/botones/{reply}/editar"), ("POST", f"/configuracion/botones/{reply}/editar"),
            ("POST", f"/configuracion/botones/{reply}/eliminar"), ("POST", f"/configuracion/botones/{reply}/subir"),
            ("POST", f"/configuracion/botones/{reply}/bajar")]


def test_anonymous_visitors_are_sent_to_login(app, client):
    token = csrf_token(client, "/login")
    for method, path in admin_routes(app) + [("GET", "/configuracion/botones/media/1")]:
        response = client.get(path) if method == "GET" else client.post(
            path, data={"title": "x", "text": "y", "csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, path)
    assert replies(app) == [("Horario", "hola", [])]


def test_agents_get_403_on_every_admin_route(app, agent_client):
    token = csrf_token(agent_client, "/")
    for method, path in admin_routes(app):
        response = agent_client.get(path) if method == "GET" else agent_client.post(
            path, data={"title": "Cambiado", "text": "y", "csrf_token": token})
        assert response.status_code == 403, (method, path)
    assert replies(app) == [("Horario", "hola", [])]


def test_posts_without_csrf_token_are_refused(app, admin_client):
    for method, path in admin_routes(app):
        if method == "POST":
            assert admin_client.post(path, data={"title": "Cambiado", "text": "y"}).status_code == 400, path
    assert replies(app) == [("Horario", "hola", [])]


def test_png_upload_is_stored_listed_and_served_back_to_any_signed_in_user(app, admin_client, agent_client,
                                                                           media_root):
    response = upload(admin_client, NEW, title="Catálogo", text="Aquí está el catálogo",
                      files=[("foto de prueba.png", PNG), ("lista.pdf", PDF)])
    assert response.status_code == 302
    assert replies(app) == [("Catálogo", "Aquí está el catálogo", ["foto de prueba.png", "lista.pdf"])]
    files = stored_files(media_root)
    assert len(files) == 2 and all(f.startswith("quick_replies/") for f in files)
    assert any(f.endswith("_foto_de_prueba.png") for f in files) and any(f.endswith("_lista.pdf") for f in files)

    with app.test_request_context():
        listed = list_quick_replies()
    assert [(r["title"], r["text"]) for r in listed] == [("Catálogo", "Aquí está el catálogo")]
    image, document = listed[0]["media"]
    assert (image["filename"], image["mime"], image["size"], image["kind"]) == (
        "foto de prueba.png", "image/png", len(PNG), "image")
    assert (document["mime"], document["kind"]) == ("application/pdf", "document")
    assert image["url"] == f"/configuracion/botones/media/{image['id']}"

    served = agent_client.get(image["url"])
    assert served.status_code == 200 and served.data == PNG and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    pdf = admin_client.get(document["url"])
    assert pdf.data == PDF and "attachment" in pdf.headers["Content-Disposition"]
    page = admin_client.get("/configuracion/botones").get_data(as_text=True)
    assert "Catálogo" in page and image["url"] in page


@pytest.mark.parametrize("name, content, message", [
    ("foto.png", b"GIF89a esto no es un PNG", "el contenido no corresponde a un archivo .png"),
    ("grande.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * MB), "supera el máximo de 5 MB"),
    ("programa.exe", b"MZ\x90\x00", "tipo de archivo no admitido (.exe)"),
    ("vacio.pdf", b"", "el archivo está vacío"),
])
def test_refused_files_leave_nothing_behind(app, admin_client, media_root, name, content, message):
    response = upload(admin_client, NEW, title="Archivo", text="texto", files=[("bueno.png", PNG), (name, content)])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and name in page
    assert replies(app) == []
    assert stored_files(media_root) == []


def test_a_request_over_the_upload_limit_is_refused_with_a_message(make_app, make_user, media_root):
    app = make_app(MEDIA_MAX_BYTES=MB)
    client = app.test_client()
    make_user("jefa", "clave-de-admin-1", admin=True)
    assert login(client, "jefa", "clave-de-admin-1").status_code == 302
    response = upload(client, NEW, title="Enorme", files=[("enorme.pdf", b"%PDF-" + b"\0" * (3 * MB))])
    assert response.status_code == 302 and response.headers["Location"].endswith(NEW)
    assert "supera el máximo de 1 MB" in client.get(NEW).get_data(as_text=True)
    assert replies(app) == [] and stored_files(media_root) == []


@pytest.mark.parametrize("fields, message", [
    ({"title": "", "text": "hola"}, "Escriba el título del botón."),
    ({"title": "x" * 61, "text": "hola"}, "hasta 60 caracteres"),
    ({"title": "Solo título", "text": "  "}, "Escriba el texto o adjunte al menos un archivo."),
    ({"title": "HORARIO", "text": "otro"}, "Ya existe el botón «Horario»"),
    ({"title": "Horário", "text": "otro"}, "Ya existe el botón «Horario»"),
])
def test_invalid_or_duplicate_quick_replies_are_refused_on_the_page(app, admin_client, media_root, fields, message):
    make_reply(app, "Horario")
    response = upload(admin_client, NEW, files=[("foto.png", PNG)] if fields["title"] == "" else [], **fields)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert replies(app) == [("Horario", "hola", [])]
    assert stored_files(media_root) == []


def test_editing_changes_text_adds_and_removes_files(app, admin_client, media_root):
    assert upload(admin_client, NEW, title="Precios", text="Lista", files=[("vieja.pdf", PDF)]).status_code == 302
    reply = reply_id(app, "Precios")
    edit = f"/configuracion/botones/{reply}/editar"
    form = admin_client.get(edit).get_data(as_text=True)
    assert "vieja.pdf" in form and 'value="Precios"' in form
    with app.app_context():
        old = db.session.scalar(select(QuickReplyMedia))
        old_id, old_path = old.id, old.path
    response = upload(admin_client, edit, title="Precios 2025", text="Lista nueva", files=[("nueva.png", PNG)],
                      remove=str(old_id))
    assert response.status_code == 302
    assert replies(app) == [("Precios 2025", "Lista nueva", ["nueva.png"])]
    files = stored_files(media_root)
    assert old_path not in files and len(files) == 1 and files[0].endswith("_nueva.png")
    assert admin_client.get(f"/configuracion/botones/media/{old_id}").status_code == 404

    response = upload(admin_client, edit, title="Precios 2025", text="", remove=str(media_ids(app)[0]))
    assert response.status_code == 400 and "adjunte al menos un archivo" in response.get_data(as_text=True)
    assert replies(app) == [("Precios 2025", "Lista nueva", ["nueva.png"])] and len(stored_files(media_root)) == 1


def test_deleting_a_quick_reply_removes_its_files(app, admin_client, media_root):
    response = upload(admin_client, NEW, title="Borrar", text="x", files=[("a.png", PNG), ("b.pdf", PDF)])
    assert response.status_code == 302
    assert len(stored_files(media_root)) == 2
    reply = reply_id(app, "Borrar")
    response = admin_client.post(f"/configuracion/botones/{reply}/eliminar",
                                 data={"csrf_token": csrf_token(admin_client, "/configuracion/botones")})
    assert response.status_code == 302
    assert replies(app) == [] and stored_files(media_root) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(QuickReplyMedia)) == 0


def test_reordering_moves_a_button_up_and_down(app, admin_client):
    for title in ("Uno", "Dos", "Tres"):
        assert upload(admin_client, NEW, title=title, text=title.lower()).status_code == 302
    token = csrf_token(admin_client, "/configuracion/botones")
    tres = reply_id(app, "Tres")
    assert admin_client.post(f"/configuracion/botones/{tres}/subir", data={"csrf_token": token}).status_code == 302
    assert [t for t, _, _ in replies(app)] == ["Uno", "Tres", "Dos"]
    admin_client.post(f"/configuracion/botones/{tres}/subir", data={"csrf_token": token})
    admin_client.post(f"/configuracion/botones/{tres}/subir", data={"csrf_token": token})
    assert [t for t, _, _ in replies(app)] == ["Tres", "Uno", "Dos"]
    admin_client.post(f"/configuracion/botones/{reply_id(app, 'Uno')}/bajar", data={"csrf_token": token})
    assert [t for t, _, _ in replies(app)] == ["Tres", "Dos", "Uno"]
    with app.test_request_context():
        assert [r["title"] for r in list_quick_replies()] == ["Tres", "Dos", "Uno"]
    assert admin_client.post("/configuracion/botones/999999/subir", data={"csrf_token": token}).status_code == 404


def test_title_text_and_file_names_are_escaped(app, admin_client):
    response = upload(admin_client, NEW, title=XSS, text="<img src=x onerror=alert(2)>",
                      files=[("<b>x</b>.png", PNG)])
    assert response.status_code == 302
    for path in ("/configuracion/botones", f"/configuracion/botones/{reply_id(app, XSS)}/editar"):
        page = admin_client.get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
        assert "<img src=x" not in page and "<b>x</b>" not in page


def test_media_route_never_leaves_media_root(app, agent_client, media_root):
    (media_root.parent / "secreto.txt").write_text("no")
    reply = make_reply(app, "Malo")
    with app.app_context():
        record = QuickReplyMedia(quick_reply_id=reply, filename="secreto.txt", path="../secreto.txt",
                                 mime="text/plain", size=2)
        db.session.add(record)
        db.session.commit()
        media = record.id
    assert agent_client.get(f"/configuracion/botones/media/{media}").status_code == 404
    assert agent_client.get("/configuracion/botones/media/999999").status_code == 404
