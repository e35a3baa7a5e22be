"""Security review (issue 15) of the panel side: simulator ownership, CSV injection, export file names,
capped rules-import errors, huge ids and JSON field types."""
import csv
import io
import re
import zipfile
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Chat, Message, QuickReply, Role, Rule, SimulatorNumber, User
from services.demo_flow import seed_demo_flow
from services.simulator import default_number
from tests.conftest import csrf_token, login, wait_for_jobs
from tests.rule_factories import HANDLERS, rule_row, sheet_bytes

OGG = b"OggS\x00\x02" + bytes(range(256)) * 8
HUGE = 10 ** 25


def signed_in(app, make_user, username, roles=(), admin=False):
    make_user(username, f"clave-de-{username}-1", roles=roles, admin=admin)
    client = app.test_client()
    assert login(client, username, f"clave-de-{username}-1").status_code == 302
    return client, {"X-CSRFToken": csrf_token(client, "/simulador")}


def user_id(app, username) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).filter_by(username=username))


# --- A. the simulator: each user sees only their own numbers ----------------------------------------

SIM = "999111222333"


@pytest.fixture
def people(app, make_user):
    with app.app_context():
        seed_demo_flow()
    return {name: signed_in(app, make_user, name, roles=roles, admin=admin)
            for name, roles, admin in (("ana", ["ventas"], False), ("beto", ["ventas"], False),
                                       ("jefa", [], True))}


def sim_send(app, person, numero=SIM, text="hola"):
    client, headers = person
    response = client.post("/simulador/enviar", json={"numero": numero, "text": text}, headers=headers)
    wait_for_jobs(app)
    return response


def sim_read(person, numero=SIM):
    return person[0].get("/simulador/mensajes", query_string={"numero": numero})


def refused(response) -> bool:
    data = response.get_json() if response.is_json else None
    text = data["error"] if data else response.get_data(as_text=True)
    return response.status_code == 403 and "otro usuario" in text


def test_another_users_simulated_chat_is_refused_everywhere_and_admins_see_all(app, people):
    ana, beto, jefa = people["ana"], people["beto"], people["jefa"]
    assert sim_send(app, ana).status_code == 200
    audio = ana[0].post("/simulador/enviar", data={"numero": SIM, "audio": (io.BytesIO(OGG), "nota.ogg")},
                        headers=ana[1], content_type="multipart/form-data")
    assert audio.status_code == 200, audio.get_json()
    wait_for_jobs(app)
    messages = sim_read(ana).get_json()["messages"]
    out_id = next(m["id"] for m in messages if m["direction"] == "out")
    media_url = next(m["media"]["url"] for m in messages if m["type"] == "audio")

    assert refused(sim_read(beto))
    assert refused(sim_send(app, beto, text="me meto"))
    assert refused(beto[0].post("/simulador/enviar", json={"numero": SIM, "reply": {
        "kind": "button_reply", "id": "Ventas", "title": "Ventas"}}, headers=beto[1]))
    assert refused(beto[0].post("/simulador/leido", json={"numero": SIM, "ids": [out_id]}, headers=beto[1]))
    assert refused(beto[0].get(media_url))
    with app.app_context():
        assert db.session.scalar(select(Message).where(Message.text == "me meto")) is None
        assert db.session.scalar(select(Message.status).where(Message.id == out_id)) != "read"

    assert len(sim_read(jefa).get_json()["messages"]) == len(messages)
    assert jefa[0].get(media_url).status_code == 200
    assert sim_send(app, jefa, text="soy la jefa").status_code == 200
    assert ana[0].get(media_url).status_code == 200
    assert "soy la jefa" in [m["text"] for m in sim_read(ana).get_json()["messages"]]
    ana_id = user_id(app, "ana")
    with app.app_context():
        assert db.session.get(SimulatorNumber, SIM).user_id == ana_id


def test_a_users_default_number_is_theirs_before_they_use_it(app, people):
    ana_number = default_number(user_id(app, "ana"))
    assert refused(sim_send(app, people["beto"], numero=ana_number))
    assert refused(sim_read(people["beto"], numero=ana_number))
    client, headers = people["ana"]
    assert client.post("/simulador/enviar", json={"text": "hola"}, headers=headers).status_code == 200
    wait_for_jobs(app)
    assert len(client.get("/simulador/mensajes").get_json()["messages"]) == 2
    assert refused(sim_read(people["beto"], numero=ana_number))


def test_a_simulated_chat_without_owner_is_for_admins_only(app, people):
    assert sim_send(app, people["ana"]).status_code == 200
    with app.app_context():
        db.session.delete(db.session.get(SimulatorNumber, SIM))  # a chat simulated before numbers had owners
        db.session.commit()
    for name in ("ana", "beto"):
        response = sim_read(people[name])
        assert response.status_code == 403 and "administrador" in response.get_json()["error"], name
        assert sim_send(app, people[name]).status_code == 403
    assert len(sim_read(people["jefa"]).get_json()["messages"]) == 2
    # A free number with no conversation reads as empty and is claimed by its first sender.
    free = sim_read(people["beto"], numero="999444555666")
    assert free.status_code == 200 and free.get_json()["messages"] == []


def test_a_claim_that_loses_the_race_reads_the_winner(app, people):
    from services.simulator import claim_number
    ana, beto = user_id(app, "ana"), user_id(app, "beto")
    with app.app_context():
        assert claim_number(SIM, ana) == ana
        assert claim_number(SIM, beto) == ana  # the insert fails on the primary key; the owner is read back
        assert claim_number(SIM, ana) == ana
        assert db.session.scalars(select(SimulatorNumber)).all()[0].user_id == ana


# --- B. CSV cells that a spreadsheet would run are neutralised ---------------------------------------

FORMULAS = ["=1+2", "+34 600", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "  =HYPERLINK(\"http://x\")", "\n@x"]


@pytest.fixture
def weird_chat(app):
    with app.app_context():
        chat = Chat(numero="5491100001111", alias="=cmd|' /C calc'!A0")
        db.session.add(chat)
        db.session.flush()
        for index, text in enumerate(FORMULAS + ["hola = bien", "a-b"]):
            db.session.add(Message(chat_id=chat.id, wamid=f"wamid.F{index}", direction="in", sender="customer",
                                   type="text", text=text, status="received"))
        db.session.commit()
        return chat.numero


@pytest.mark.parametrize("path", ["/export/conversation/5491100001111.csv", "/export/conversaciones.csv"])
def test_csv_exports_neutralise_formulas(admin_client, weird_chat, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [r["text"] for r in rows] == ["'" + text for text in FORMULAS] + ["hola = bien", "a-b"]
    assert {r["alias"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    assert {r["numero"] for r in rows} == {weird_chat}


# --- C. file names and ZIP entries come from digits only -------------------------------------------

WEIRD_NUMBERS = ['1"; filename=evil.exe', "../../../../tmp/zipslip", "12\r\n34", "a/b", "1234"]


@pytest.fixture
def weird_numbers(app):
    with app.app_context():
        ids = {}
        for index, numero in enumerate(WEIRD_NUMBERS):
            chat = Chat(numero=numero)
            db.session.add(chat)
            db.session.flush()
            db.session.add(Message(chat_id=chat.id, wamid=f"wamid.N{index}", direction="in", sender="customer",
                                   type="text", text="hola", status="received"))
            ids[numero] = chat.id
        db.session.commit()
        return ids


def fetch(client, path):
    """A streamed export read to its end, so its request context is popped before the next one."""
    response = client.get(path)
    response.get_data()
    response.close()
    return response


def test_export_names_are_built_from_digits_only(admin_client, weird_numbers):
    for numero in WEIRD_NUMBERS:
        for suffix in (".csv", ""):
            response = fetch(admin_client, f"/export/conversation/{quote(numero, safe='')}{suffix}")
            assert response.status_code in (200, 404), (numero, suffix, response.status_code)
            disposition = response.headers.get("Content-Disposition", "")
            assert "\r" not in disposition and "\n" not in disposition and "evil" not in disposition
            if suffix and response.status_code == 200:
                assert re.fullmatch(r'attachment; filename="conversacion-[0-9]*(-?chat[0-9]+)?\.csv"', disposition)
    assert fetch(admin_client, "/export/conversation/1234.csv").headers["Content-Disposition"] == \
        'attachment; filename="conversacion-1234.csv"'
    evil = fetch(admin_client, f"/export/conversation/{quote(WEIRD_NUMBERS[0], safe='')}.csv")
    assert evil.status_code == 200 and evil.headers["Content-Disposition"] == \
        f'attachment; filename="conversacion-1-chat{weird_numbers[WEIRD_NUMBERS[0]]}.csv"'

    assert fetch(admin_client, "/export/conversaciones.csv").status_code == 200
    response = fetch(admin_client, "/export/conversaciones.zip")
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.get_data())).namelist()
    assert len(names) == len(set(names)) == len(WEIRD_NUMBERS)
    assert all(re.fullmatch(r"conversacion-[0-9]*(-?chat[0-9]+)?\.json", name) for name in names), names
    assert "conversacion-1234.json" in names


# --- D. a rules sheet full of errors answers fast with the first 100 ---------------------------------

def stray_columns_sheet(rows=150, stray=300) -> bytes:
    """Headers step, input_text, then `stray` columns without a header, each with a value in every row."""
    return sheet_bytes([["inicio", f"x{n}"] + ["basura"] * stray for n in range(rows)],
                       headers=["step", "input_text"])


def test_an_import_with_many_errors_lists_the_first_100_and_counts_the_rest(app):
    from services.rules import import_rules
    with app.app_context():
        report = import_rules(io.BytesIO(stray_columns_sheet()), known_handlers=HANDLERS)
        assert not report.ok and report.imported == 0
        assert len(report.errors) == 100 and report.stopped_at == 102
        assert [row for row, _ in report.errors] == list(range(2, 102))
        assert report.errors[0][1] == "las columnas C, D, E, F, G y 295 más tienen valores pero no tienen encabezado"
        assert report.error_lines()[-1].startswith("y más errores desde la fila 102")
        assert db.session.scalar(select(func.count(Rule.id))) == 0

        bad = sheet_bytes([rule_row(input_text=f"e{n}", prioridad="alta") for n in range(120)])
        report = import_rules(io.BytesIO(bad), known_handlers=HANDLERS)
        assert [row for row, _ in report.errors] == list(range(2, 102)) and report.error_count == 120
        assert report.error_lines()[-1] == "y 20 errores más" and db.session.scalar(select(func.count(Rule.id))) == 0


def test_the_import_page_and_cli_show_the_cap(app, admin_client, runner, tmp_path):
    data = stray_columns_sheet()
    page = admin_client.post("/configuracion/reglas/importar", content_type="multipart/form-data", data={
        "archivo": (io.BytesIO(data), "reglas.xlsx"), "csrf_token": csrf_token(admin_client, "/configuracion/reglas/importar")})
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and "y más errores desde la fila 102" in text and "101 errores" in text
    assert text.count("<tr><td>") == 100 and len(page.get_data()) < 100_000

    path = tmp_path / "reglas.xlsx"
    path.write_bytes(data)
    result = runner.invoke(args=["import-rules", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 102 and lines[-2].startswith("y más errores desde la fila 102") and "101 errores" in lines[-1]


# --- E. ids too big for the database are a 404 in a path, a 400 in a query ---------------------------

def test_huge_ids_in_paths_are_404(app, admin_client):
    for path in (f"/api/chats/{HUGE}", f"/chats/{HUGE}", f"/media/{HUGE}", f"/api/chats/{HUGE}/mensajes",
                 f"/api/chats/1/mensajes/{HUGE}", f"/simulador/media/{HUGE}", f"/configuracion/botones/media/{HUGE}",
                 f"/configuracion/botones/{HUGE}/editar", f"/configuracion/reglas/{HUGE}/editar"):
        assert admin_client.get(path).status_code == 404, path


def test_huge_ids_in_queries_and_bodies_are_400(app, admin_client):
    with app.app_context():
        chat = Chat(numero="5491100002222", last_inbound_at=None)
        db.session.add(chat)
        db.session.commit()
        chat_id = chat.id
    headers = {"X-CSRFToken": csrf_token(admin_client, "/")}
    for path in (f"/?rol={HUGE}", f"/api/chats?rol={HUGE}", f"/api/chats?rol=abc", f"/api/chats?rol=%C2%B2",
                 f"/api/chats/{chat_id}/mensajes?despues={HUGE}", f"/api/chats/{chat_id}/mensajes?antes={HUGE}",
                 f"/api/chats?antes=2026-01-01T00:00:00|{HUGE}",
                 f"/tablero/api/por-dia?rol={HUGE}", f"/tablero/api/por-dia?rol=%C2%B2", f"/tablero?rol={HUGE}",
                 f"/export/conversaciones.csv?rol={HUGE}", f"/simulador/mensajes?numero=999111222333&despues={HUGE}"):
        response = admin_client.get(path)
        assert response.status_code == 400, (path, response.status_code)
    for action, body in (("respuesta-rapida", {"id": HUGE}), ("respuesta-rapida", {"id": str(HUGE)}),
                         ("roles", {"roles": [HUGE]}), ("roles", {"roles": [True]})):
        response = admin_client.post(f"/api/chats/{chat_id}/{action}", json=body, headers=headers)
        assert response.status_code == 400, (action, body, response.status_code)
    sim_headers = {"X-CSRFToken": csrf_token(admin_client, "/simulador")}
    for path, body in (("/simulador/leido", {"numero": "999111222333", "ids": [HUGE]}),
                       ("/simulador/enviar", {"numero": "999111222333", "reply": {
                           "kind": "button_reply", "id": "a", "title": "a", "message_id": HUGE}})):
        response = admin_client.post(path, json=body, headers=sim_headers)
        assert response.status_code == 400, (path, response.status_code)
    form = {"ids": [str(HUGE)], "step": "inicio", "csrf_token": csrf_token(admin_client, "/configuracion/reglas")}
    assert admin_client.post("/configuracion/reglas/ordenar", data=form).status_code == 400


# --- F. JSON fields of the wrong type are a 400 naming the field --------------------------------------

@pytest.fixture
def open_chat(app):
    from models.types import utcnow
    with app.app_context():
        role = Role(name="ventas", keywords="")
        db.session.add_all([role, QuickReply(title="Saludo", text="Hola", position=1)])
        chat = Chat(numero="5491100003333", last_inbound_at=utcnow(), roles=[role])
        db.session.add(chat)
        db.session.commit()
        return chat.id


BAD_JSON = [
    ("mensajes", {"tipo": "list", "opciones": ["a"], "texto": 5}, "texto"),
    ("mensajes", {"tipo": "list", "opciones": {"a": 1}, "texto": "Elija"}, "opciones"),
    ("mensajes", {"tipo": "list", "opciones": ["a", 2], "texto": "Elija"}, "opciones"),
    ("mensajes", {"texto": 123}, "texto"),
    ("mensajes", {"texto": ["hola"]}, "texto"),
    ("mensajes", {"tipo": ["text"], "texto": "hola"}, "tipo"),
    ("mensajes", {"tipo": "template", "plantilla": 1}, "plantilla"),
    ("mensajes", {"tipo": "template", "plantilla": "saludo", "idioma": {"es": 1}}, "idioma"),
    ("alias", {"alias": {"a": 1}}, "alias"),
    ("alias", {"alias": 5}, "alias"),
    ("roles", {"roles": "1,2"}, "roles"),
    ("roles", {"roles": [{"id": 1}]}, "roles"),
    ("roles", {"roles": [1.5]}, "roles"),
    ("respuesta-rapida", {"id": [1]}, "id"),
    ("respuesta-rapida", {"id": 1.5}, "id"),
    ("respuesta-rapida", {"id": True}, "id"),
]


def test_json_fields_of_the_wrong_type_are_a_400_naming_the_field(app, admin_client, open_chat):
    headers = {"X-CSRFToken": csrf_token(admin_client, "/")}
    for action, body, field in BAD_JSON:
        response = admin_client.post(f"/api/chats/{open_chat}/{action}", json=body, headers=headers)
        assert response.status_code == 400, (action, body, response.status_code)
        assert field in response.get_json()["error"], (action, body, response.get_json())
    with app.app_context():
        chat = db.session.get(Chat, open_chat)
        assert chat.alias is None and [r.name for r in chat.roles] == ["ventas"]
        assert db.session.scalar(select(Message)) is None


def test_list_options_may_come_as_a_json_list_or_a_piped_string(app, admin_client, open_chat):
    headers = {"X-CSRFToken": csrf_token(admin_client, "/")}
    for options in (["Uno", " Dos "], "Uno|Dos"):
        response = admin_client.post(f"/api/chats/{open_chat}/mensajes", headers=headers,
                                     json={"tipo": "list", "texto": "Elija", "opciones": options})
        assert response.status_code == 201, response.get_json()
    wait_for_jobs(app)
    with app.app_context():
        contents = [m.content_data for m in db.session.scalars(select(Message).order_by(Message.id))]
        assert [c["options"] for c in contents] == [["Uno", "Dos"], ["Uno", "Dos"]]
    assert admin_client.post(f"/api/chats/{open_chat}/alias", json={"alias": None},
                             headers=headers).status_code == 200


def test_simulator_json_fields_of_the_wrong_type_are_a_400(app, admin_client):
    headers = {"X-CSRFToken": csrf_token(admin_client, "/simulador")}
    for body in ({"numero": {"a": 1}, "text": "hola"}, {"numero": SIM, "reply": {"kind": ["x"], "id": "a", "title": "a"}},
                 {"numero": SIM, "reply": {"kind": "button_reply", "id": "a", "title": "a", "message_id": [1]}},
                 {"numero": SIM, "reply": {"kind": "button_reply", "id": "a", "title": "a", "description": 5}}):
        response = admin_client.post("/simulador/enviar", json=body, headers=headers)
        assert response.status_code == 400, (body, response.status_code)
    for body in ({"numero": SIM, "ids": "1"}, {"numero": SIM, "ids": [[1]]}, {"numero": [SIM], "ids": []}):
        assert admin_client.post("/simulador/leido", json=body, headers=headers).status_code == 400, body
