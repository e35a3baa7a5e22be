import io
import re

import pytest
from sqlalchemy import select

from extensions import db
from models import Rule, RuleMedia
from services.rules import create_rule
from tests.conftest import csrf_token, login
from tests.rule_factories import HANDLERS, PDF, PNG, demo_rows, rule_row, sheet_bytes, sheet_values

RULES = "/configuracion/reglas"


def form_data(client, path=f"{RULES}/nueva", **values) -> dict:
    row = rule_row(**values)
    data = {key: value for key, value in row.items() if value is not None and key != "avanzar"}
    if row["avanzar"] in ("si", True):
        data["avanzar"] = "y"
    data["csrf_token"] = csrf_token(client, path)
    return data


def all_rules(app) -> list[Rule]:
    with app.app_context():
        rules = list(db.session.scalars(select(Rule).order_by(Rule.step, Rule.prioridad, Rule.id)))
        for rule in rules:
            db.session.expunge(rule)
        return rules


def add_rules(app, *rows) -> list[int]:
    with app.app_context():
        return [create_rule(row, known_handlers=HANDLERS).id for row in rows]


@pytest.mark.parametrize("path", [RULES, f"{RULES}/nueva", f"{RULES}/importar", f"{RULES}/exportar",
                                  f"{RULES}/flujo"])
def test_anonymous_users_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", [RULES, f"{RULES}/nueva", f"{RULES}/importar", f"{RULES}/exportar",
                                  f"{RULES}/flujo"])
def test_agents_who_are_not_admins_get_403(client, make_user, path):
    username, password = make_user("agente", "clave-de-agente-1", roles=["ventas"])
    assert login(client, username, password).status_code == 302
    assert client.get(path).status_code == 403
    assert "Reglas" not in client.get("/").get_data(as_text=True)


def test_admins_see_the_menu_link_and_an_empty_list(admin_client):
    assert f'href="{RULES}"' in admin_client.get("/").get_data(as_text=True)
    page = admin_client.get(RULES)
    assert page.status_code == 200 and "Todavía no hay reglas" in page.get_data(as_text=True)


def test_create_a_rule_through_the_form(app, admin_client):
    data = form_data(admin_client, step="inicio", input_text="hola, buenas", respuesta="¡Hola!", prioridad="2",
                     avanzar="si")
    response = admin_client.post(f"{RULES}/nueva", data=data)
    assert response.status_code == 302
    (rule,) = all_rules(app)
    assert (rule.step, rule.input_text, rule.respuesta, rule.prioridad, rule.avanzar) == \
        ("inicio", "hola, buenas", "¡Hola!", 2, True)
    page = admin_client.get(RULES).get_data(as_text=True)
    assert "Regla creada en el paso inicio." in page and "hola, buenas" in page


def test_post_without_csrf_token_is_refused(app, admin_client):
    (rule_id,) = add_rules(app, rule_row())
    data = {k: v for k, v in form_data(admin_client).items() if k != "csrf_token"}
    assert admin_client.post(f"{RULES}/nueva", data=data).status_code == 400
    assert admin_client.post(f"{RULES}/{rule_id}/editar", data=data).status_code == 400
    assert admin_client.post(f"{RULES}/{rule_id}/eliminar").status_code == 400
    assert admin_client.post(f"{RULES}/{rule_id}/bajar").status_code == 400
    assert admin_client.post(f"{RULES}/ordenar", data={"step": "inicio", "ids": [rule_id]}).status_code == 400
    assert admin_client.post(f"{RULES}/importar", data={"archivo": (io.BytesIO(sheet_bytes(demo_rows())), "r.xlsx")},
                             content_type="multipart/form-data").status_code == 400
    assert admin_client.post(f"{RULES}/nueva", data={**data, "csrf_token": "falso"}).status_code == 400
    assert len(all_rules(app)) == 1


def test_form_errors_are_shown_in_spanish_and_nothing_is_saved(app, admin_client):
    response = admin_client.post(f"{RULES}/nueva", data=form_data(
        admin_client, step="", tipo="botones", opciones="Uno|Dos|Tres|Cuatro", prioridad="cero",
        siguiente_step="nada"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "falta el nombre del paso" in page and "WhatsApp admite como máximo 3" in page
    assert "debe ser un número entero" in page and "&#39;nada&#39; no existe" in page
    assert 'value="Uno|Dos|Tres|Cuatro"' in page or "Uno|Dos|Tres|Cuatro</textarea>" in page
    assert all_rules(app) == []


def test_edit_a_rule(app, admin_client):
    rule_id, _ = add_rules(app, rule_row(), rule_row(step="menu"))
    path = f"{RULES}/{rule_id}/editar"
    page = admin_client.get(path).get_data(as_text=True)
    assert 'value="inicio"' in page and "¡Hola!" in page
    response = admin_client.post(path, data=form_data(admin_client, path, respuesta="Buenas tardes", tipo="botones",
                                                      opciones="Sí|No", siguiente_step="menu"))
    assert response.status_code == 302
    rule = next(r for r in all_rules(app) if r.id == rule_id)
    assert (rule.respuesta, rule.tipo, rule.opciones, rule.siguiente_step) == ("Buenas tardes", "botones", "Sí|No",
                                                                               "menu")
    assert admin_client.get(f"{RULES}/9999/editar").status_code == 404


def test_delete_a_rule_and_refuse_to_orphan_a_step(app, admin_client):
    first, second = add_rules(app, rule_row(step="menu"), rule_row(step="inicio", siguiente_step="menu"))
    token = csrf_token(admin_client, RULES)
    response = admin_client.post(f"{RULES}/{first}/eliminar", data={"csrf_token": token}, follow_redirects=True)
    assert "No se eliminó la regla" in response.get_data(as_text=True) and len(all_rules(app)) == 2
    assert admin_client.post(f"{RULES}/{second}/eliminar", data={"csrf_token": token}).status_code == 302
    assert admin_client.post(f"{RULES}/{first}/eliminar", data={"csrf_token": token}).status_code == 302
    assert all_rules(app) == []
    assert admin_client.post(f"{RULES}/{first}/eliminar", data={"csrf_token": token}).status_code == 404


def test_reorder_with_up_and_down_buttons_and_an_ordered_list(app, admin_client):
    ids = add_rules(app, *(rule_row(input_text=f"op{i}", prioridad=i + 1) for i in range(3)))
    page = admin_client.get(RULES).get_data(as_text=True)
    assert f'action="{RULES}/{ids[2]}/subir"' in page and f'action="{RULES}/{ids[0]}/bajar"' in page
    token = csrf_token(admin_client, RULES)
    assert admin_client.post(f"{RULES}/{ids[2]}/subir", data={"csrf_token": token}).status_code == 302
    assert [r.id for r in all_rules(app)] == [ids[0], ids[2], ids[1]]
    admin_client.post(f"{RULES}/{ids[0]}/bajar", data={"csrf_token": token})
    assert [r.id for r in all_rules(app)] == [ids[2], ids[0], ids[1]]
    response = admin_client.post(f"{RULES}/ordenar", data={"csrf_token": token, "step": "inicio",
                                                           "ids": [str(ids[1]), str(ids[2]), str(ids[0])]})
    assert response.status_code == 302
    assert [(r.id, r.prioridad) for r in all_rules(app)] == [(ids[1], 1), (ids[2], 2), (ids[0], 3)]
    bad = admin_client.post(f"{RULES}/ordenar", data={"csrf_token": token, "step": "inicio", "ids": [str(ids[0])]},
                            follow_redirects=True)
    assert "una sola vez" in bad.get_data(as_text=True)
    assert admin_client.post(f"{RULES}/ordenar", data={"csrf_token": token, "step": "inicio",
                                                       "ids": ["x"]}).status_code == 400


def test_media_upload_is_saved_with_a_safe_name(app, admin_client, media_root):
    data = form_data(admin_client, tipo="imagen", respuesta="Nuestro catálogo")
    data["archivo"] = (io.BytesIO(PNG), "../../../Catálogo 2025<script>.png")
    response = admin_client.post(f"{RULES}/nueva", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        (media,) = db.session.scalars(select(RuleMedia))
        assert re.fullmatch(r"rules/[0-9a-f]{32}_[A-Za-z0-9_.-]+\.png", media.path), media.path
        assert media.mime == "image/png" and media.size == len(PNG)
        rule_id, media_id = media.rule_id, media.id
    assert (media_root / media.path).read_bytes() == PNG
    page = admin_client.get(RULES).get_data(as_text=True)
    assert "Catálogo 2025&lt;script&gt;.png" in page and "<script>.png" not in page
    download = admin_client.get(f"{RULES}/{rule_id}/archivo/{media_id}")
    assert download.status_code == 200 and download.data == PNG and download.mimetype == "image/png"
    assert "attachment" in download.headers["Content-Disposition"]


@pytest.mark.parametrize("tipo, name, content, message", [
    ("imagen", "foto.exe", b"MZ" + b"0" * 64, "tipo de archivo no admitido"),
    ("imagen", "foto.png", PDF, "el contenido no corresponde a un archivo .png"),
    ("imagen", "grande.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), "supera el máximo de 5 MB"),
    ("audio", "larga.mp3", b"ID3" + b"0" * (16 * 1024 * 1024), "supera el máximo de 16 MB"),
])
def test_bad_type_or_oversized_uploads_are_refused(app, admin_client, media_root, tipo, name, content, message):
    data = form_data(admin_client, tipo=tipo)
    data["archivo"] = (io.BytesIO(content), name)
    response = admin_client.post(f"{RULES}/nueva", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert all_rules(app) == [] and not list((media_root / "rules").glob("*"))


def test_a_request_over_the_upload_limit_gets_a_message(app, admin_client):
    app.config["MEDIA_MAX_BYTES"] = 1024
    data = form_data(admin_client, tipo="documento")
    data["archivo"] = (io.BytesIO(PDF + b"0" * (2 * 1024 * 1024)), "grande.pdf")
    response = admin_client.post(f"{RULES}/nueva", data=data, content_type="multipart/form-data",
                                 follow_redirects=True)
    assert "demasiado grande" in response.get_data(as_text=True) and all_rules(app) == []


def test_import_page_shows_every_bad_row_or_the_count(app, admin_client):
    path = f"{RULES}/importar"
    bad = sheet_bytes([rule_row(), rule_row(tipo="foto"), rule_row(media_url="nada", tipo="imagen"),
                       rule_row(siguiente_step="<b>pagos</b>")])
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, path),
                                             "archivo": (io.BytesIO(bad), "reglas.xlsx")},
                                 content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "No se importó nada" in page
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", page)
    assert [(row, reason.split(":")[0]) for row, reason in rows] == [("3", "tipo"), ("4", "media_url"),
                                                                     ("5", "siguiente_step")]
    assert "&lt;b&gt;pagos&lt;/b&gt;" in page and "<b>pagos" not in page
    assert all_rules(app) == []
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, path), "merge": "y",
                                             "archivo": (io.BytesIO(sheet_bytes(demo_rows())), "reglas.xlsx")},
                                 content_type="multipart/form-data")
    assert response.status_code == 200 and "Se importaron 7 reglas" in response.get_data(as_text=True)
    assert len(all_rules(app)) == 7


def test_import_page_refuses_a_file_that_is_not_xlsx_and_a_missing_file(app, admin_client):
    path = f"{RULES}/importar"
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, path),
                                             "archivo": (io.BytesIO(b"step;input_text\n"), "reglas.xlsx")},
                                 content_type="multipart/form-data")
    assert response.status_code == 400 and "no es un libro de Excel (.xlsx) válido" in response.get_data(as_text=True)
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, path)})
    assert response.status_code == 400 and "Elija un archivo .xlsx" in response.get_data(as_text=True)


def test_import_page_accepts_files_over_the_general_request_limit(app, admin_client):
    path = f"{RULES}/importar"
    huge = b"PK" + b"0" * (5 * 1024 * 1024)
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, path),
                                             "archivo": (io.BytesIO(huge), "reglas.xlsx")},
                                 content_type="multipart/form-data")
    assert response.status_code == 400 and "supera el máximo de 5 MB" in response.get_data(as_text=True)


def test_export_downloads_a_valid_xlsx(app, admin_client):
    add_rules(app, rule_row(), rule_row(step="menu", siguiente_step="inicio", avanzar=True))
    response = admin_client.get(f"{RULES}/exportar")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert re.search(r'attachment; filename=reglas-\d{4}-\d{2}-\d{2}\.xlsx', response.headers["Content-Disposition"])
    values = sheet_values(response.data)
    assert values[0][:3] == ("step", "input_text", "respuesta")
    assert [(row[0], row[5], row[7]) for row in values[1:]] == [("inicio", None, "no"), ("menu", "inicio", "si")]


def test_flow_page_draws_each_step_and_arrow(app, admin_client):
    with app.app_context():
        from services.rules import import_rules
        assert import_rules(io.BytesIO(sheet_bytes(demo_rows())), known_handlers=HANDLERS).ok
    page = admin_client.get(f"{RULES}/flujo").get_data(as_text=True)
    assert "<svg" in page and "<script" not in page
    for step in ("inicio", "menu", "ventas", "soporte"):
        assert f"<title>{step}</title>" in page and f"<code>{step}</code>" in page
    assert page.count('marker-end="url(#arrowhead)"') == 5
    for label in ("cualquier otro (*)", "1, ventas", "2, soporte", "mesón, meson"):
        assert f'<span class="edge-label">{label}</span>' in page
    assert re.search(r'<span class="edge-label">1, ventas</span>.*?<code>ventas</code>', page, re.S)


def test_user_text_is_escaped_everywhere(app, admin_client):
    attack = "<script>alert(1)</script>"
    add_rules(app, rule_row(step="inicio", input_text=f"hola {attack}", respuesta=attack, siguiente_step="inicio",
                            rol_keyword=attack, calculo=attack, handler="meson"))
    pages = [admin_client.get(path).get_data(as_text=True)
             for path in (RULES, f"{RULES}/flujo", f"{RULES}/{all_rules(app)[0].id}/editar")]
    for page in pages:
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
