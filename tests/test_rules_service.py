import io

import pytest
from sqlalchemy import select

from extensions import db
from models import Rule, RuleMedia
from services.rules import (RuleError, Upload, create_rule, delete_rule, draw_flow, flow_graph, known_handler_names,
                            move_rule, reorder_rules, rules_by_step, update_rule, validate_rule)
from services.rules.media import MB
from tests.rule_factories import HANDLERS, PDF, PNG, rule_row


def check(steps=(), has_media=False, **values):
    return validate_rule(rule_row(**values), steps, HANDLERS, has_media=has_media)


def errors_of(**values):
    return check(**values)[1]


def test_a_plain_text_rule_is_cleaned():
    values, errors = check(step="  inicio ", input_text=" hola, buenas ", respuesta="Hola\r\n¿qué tal?",
                           prioridad="2", avanzar="Sí", opciones="", rol_keyword="  ")
    assert errors == {}
    assert values == {"step": "inicio", "input_text": "hola, buenas", "respuesta": "Hola\n¿qué tal?",
                      "tipo": "texto", "opciones": None, "siguiente_step": None, "prioridad": 2, "avanzar": True,
                      "rol_keyword": None, "handler": None, "calculo": None, "media_url": None}


@pytest.mark.parametrize("step, reason", [("", "falta"), ("   ", "falta"), ("x" * 121, "120")])
def test_step_must_be_present_and_short(step, reason):
    assert reason in errors_of(step=step)["step"]
    assert "step" not in errors_of(step="x" * 120)


@pytest.mark.parametrize("input_text", ["", "  ", "hola, *", "¿?, !!", "👍"])
def test_input_text_needs_recognisable_inputs_or_a_lone_wildcard(input_text):
    assert "input_text" in errors_of(input_text=input_text)


@pytest.mark.parametrize("input_text", ["*", " * ", "1", "hola,buenas", "Sí, claro"])
def test_good_input_texts(input_text):
    assert "input_text" not in errors_of(input_text=input_text)


def test_tipo_must_be_known_and_is_case_insensitive():
    assert "foto" in errors_of(tipo="foto")["tipo"]
    values, errors = check(tipo=" TEXTO ")
    assert errors == {} and values["tipo"] == "texto"
    assert check(tipo="")[0]["tipo"] == "texto"


@pytest.mark.parametrize("tipo, opciones, ok", [
    ("lista", "|".join(f"Opción {i}" for i in range(10)), True),
    ("lista", "|".join(f"Opción {i}" for i in range(11)), False),
    ("lista", "", False),
    ("lista", "x" * 24, True),
    ("lista", "x" * 25, False),
    ("botones", "Sí|No|Tal vez", True),
    ("botones", "A|B|C|D", False),
    ("botones", "x" * 20, True),
    ("botones", "x" * 21 + "|No", False),
    ("botones", " | ", False),
    ("botones", "Sí|si", False),
])
def test_whatsapp_limits_on_lists_and_buttons(tipo, opciones, ok):
    assert ("opciones" not in errors_of(tipo=tipo, opciones=opciones)) is ok


def test_lists_and_buttons_need_a_body_text_within_whatsapp_limits():
    assert "respuesta" in errors_of(tipo="botones", opciones="Sí|No", respuesta=" ")
    assert "respuesta" in errors_of(tipo="lista", opciones="A|B", respuesta="x" * 1025)
    assert "respuesta" in errors_of(respuesta="x" * 4097)


@pytest.mark.parametrize("tipo", ["imagen", "documento", "audio", "video"])
def test_media_rules_need_a_web_url_or_a_file(tipo):
    assert "media_url" in errors_of(tipo=tipo)
    assert errors_of(tipo=tipo, media_url="https://cdn.example.com/a.bin") == {}
    assert errors_of(tipo=tipo, has_media=True) == {}
    assert "no ambos" in errors_of(tipo=tipo, has_media=True, media_url="https://cdn.example.com/a.bin")["media_url"]


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "https://", "example.com/a.jpg", "javascript:alert(1)",
                                 "http:///a.jpg", "https://exa mple.com/a.jpg"])
def test_bad_media_urls(url):
    assert "URL" in errors_of(tipo="imagen", media_url=url)["media_url"]


@pytest.mark.parametrize("value, expected", [("1", 1), (3, 3), (2.0, 2), ("4.0", 4), ("", 1), (None, 1),
                                             (" 7 ", 7)])
def test_prioridad_accepts_whole_numbers(value, expected):
    values, errors = check(prioridad=value)
    assert errors == {} and values["prioridad"] == expected


@pytest.mark.parametrize("value", ["0", 0, -1, "-1", "abc", 1.5, "1,5", True, 10_000_001])
def test_prioridad_refuses_the_rest(value):
    assert "prioridad" in errors_of(prioridad=value)


@pytest.mark.parametrize("value, expected", [("si", True), ("Sí", True), ("SI", True), ("true", True), (1, True),
                                             ("1", True), (True, True), ("no", False), ("false", False),
                                             (0, False), ("0", False), (None, False), ("", False), (False, False)])
def test_avanzar_is_yes_or_no(value, expected):
    values, errors = check(avanzar=value)
    assert errors == {} and values["avanzar"] is expected


def test_avanzar_refuses_other_words():
    assert "avanzar" in errors_of(avanzar="quizás")


def test_siguiente_step_must_exist_in_the_rule_set():
    assert "pago" in errors_of(siguiente_step="pago")["siguiente_step"]
    assert check(siguiente_step="pago", steps={"pago"})[1] == {}
    assert check(step="menu", siguiente_step="menu")[1] == {}


def test_handler_must_be_registered():
    assert "calculadora" in errors_of(handler="calculadora")["handler"]
    assert errors_of(handler="meson") == {}
    assert "handler" in validate_rule(rule_row(handler="meson"), (), known_handlers=())[1]


def test_the_default_allow_list_is_the_flow_engines_registry():
    assert {"meson", "asesor"} <= known_handler_names()
    assert validate_rule(rule_row(handler="meson"), ())[1] == {}


def test_every_problem_is_reported_at_once():
    errors = errors_of(step="", input_text="", tipo="botones", opciones="A|B|C|D", prioridad="x", avanzar="tal vez",
                       siguiente_step="nada", handler="otro")
    assert set(errors) == {"step", "input_text", "opciones", "prioridad", "avanzar", "siguiente_step", "handler"}


def test_create_update_and_delete(app):
    with app.app_context():
        first = create_rule(rule_row(), known_handlers=HANDLERS)
        second = create_rule(rule_row(step="menu", input_text="*", siguiente_step="inicio"), known_handlers=HANDLERS)
        with pytest.raises(RuleError) as refused:
            create_rule(rule_row(siguiente_step="pago"), known_handlers=HANDLERS)
        assert "pago" in refused.value.errors["siguiente_step"]
        update_rule(first.id, rule_row(respuesta="Buenas", prioridad="3"), known_handlers=HANDLERS)
        assert (db.session.get(Rule, first.id).respuesta, db.session.get(Rule, first.id).prioridad) == ("Buenas", 3)
        with pytest.raises(RuleError) as orphan:
            update_rule(first.id, rule_row(step="otro"), known_handlers=HANDLERS)
        assert "menu" in orphan.value.errors["step"]
        with pytest.raises(RuleError):
            delete_rule(first.id)
        delete_rule(second.id)
        delete_rule(first.id)
        assert db.session.scalars(select(Rule)).all() == []
        with pytest.raises(LookupError):
            delete_rule(first.id)


def test_reorder_and_move_within_a_step(app):
    with app.app_context():
        ids = [create_rule(rule_row(input_text=f"op{i}", prioridad=1), known_handlers=HANDLERS).id for i in range(3)]
        other = create_rule(rule_row(step="menu"), known_handlers=HANDLERS).id
        reorder_rules("inicio", [ids[2], ids[0], ids[1]])
        order = lambda: [r.id for r in dict(rules_by_step())["inicio"]]  # noqa: E731
        assert order() == [ids[2], ids[0], ids[1]]
        assert [r.prioridad for r in dict(rules_by_step())["inicio"]] == [1, 2, 3]
        move_rule(ids[1], -1)
        assert order() == [ids[2], ids[1], ids[0]]
        move_rule(ids[2], -1)
        move_rule(ids[0], +1)
        assert order() == [ids[2], ids[1], ids[0]]
        for wrong in ([ids[0], ids[1]], [*ids, other], [ids[0], ids[0], ids[1]]):
            with pytest.raises(RuleError):
                reorder_rules("inicio", wrong)


def test_flow_graph_has_steps_and_labelled_edges(app):
    with app.app_context():
        for row in (rule_row(step="inicio", input_text="*"),
                    rule_row(step="menu", input_text="1, ventas", siguiente_step="inicio"),
                    rule_row(step="menu", input_text="*", siguiente_step="inicio", avanzar="si", prioridad=2),
                    rule_row(step="menu", input_text="otra vez", siguiente_step="menu"),
                    rule_row(step="menu", input_text="hola")):
            create_rule(row, known_handlers=HANDLERS)
        update_rule(db.session.scalar(select(Rule.id).where(Rule.step == "inicio")),
                    rule_row(step="inicio", input_text="*", siguiente_step="menu"), known_handlers=HANDLERS)
        graph = flow_graph()
        assert {(s.name, s.rule_count) for s in graph.steps} == {("inicio", 1), ("menu", 4)}
        edges = {(e.source, e.target): e for e in graph.edges}
        assert set(edges) == {("inicio", "menu"), ("menu", "inicio"), ("menu", "menu")}
        assert edges["menu", "inicio"].labels == ("1, ventas", "cualquier otro (*)")
        assert edges["menu", "inicio"].avanzar and not edges["inicio", "menu"].avanzar
        drawing = draw_flow(graph, "inicio")
        assert [b.name for b in drawing.boxes] == ["inicio", "menu"]
        assert drawing.boxes[0].initial and drawing.boxes[0].x < drawing.boxes[1].x
        assert len(drawing.arrows) == 3 and all(a.path.startswith("M") for a in drawing.arrows)
        assert all(0 <= a.label_x <= drawing.width and 0 <= a.label_y <= drawing.height for a in drawing.arrows)
        assert [(e.label, e.target) for e in drawing.boxes[0].exits] == [("cualquier otro (*)", "menu")]


def test_uploaded_media_is_stored_under_a_safe_generated_name(app, media_root):
    with app.app_context():
        rule = create_rule(rule_row(tipo="imagen"), Upload("../../etc/pass wd.PNG", io.BytesIO(PNG)),
                           known_handlers=HANDLERS)
        (media,) = rule.media
        assert media.path.startswith("rules/") and media.path.endswith("_pass_wd.png")
        assert "/" not in media.path[len("rules/"):] and ".." not in media.path
        assert (media.filename, media.mime, media.size) == ("pass wd.PNG", "image/png", len(PNG))
        assert (media_root / media.path).read_bytes() == PNG
        update_rule(rule.id, rule_row(tipo="documento"), Upload("lista de precios.pdf", io.BytesIO(PDF)),
                    known_handlers=HANDLERS)
        (replacement,) = db.session.get(Rule, rule.id).media
        assert replacement.mime == "application/pdf" and not (media_root / media.path).exists()
        delete_rule(rule.id)
        assert not (media_root / replacement.path).exists()
        assert db.session.scalars(select(RuleMedia)).all() == []


@pytest.mark.parametrize("tipo, name, content, reason", [
    ("imagen", "foto.gif", b"GIF89a", "no admitido"),
    ("imagen", "foto.png", b"esto es texto", "no corresponde"),
    ("imagen", "foto.jpg", b"\xff\xd8\xff" + b"0" * (5 * MB), "5 MB"),
    ("audio", "nota.ogg", b"OggS" + b"0" * (16 * MB), "16 MB"),
    ("video", "clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"0" * 64, None),
    ("audio", "nota.wav", b"RIFF", "no admitido"),
    ("texto", "foto.png", PNG, "solo las reglas"),
    ("documento", "vacío.pdf", b"", "vacío"),
])
def test_uploads_are_checked_by_type_and_size(app, media_root, tipo, name, content, reason):
    with app.app_context():
        if reason is None:
            assert create_rule(rule_row(tipo=tipo), Upload(name, io.BytesIO(content)), known_handlers=HANDLERS).media
            return
        with pytest.raises(RuleError) as refused:
            create_rule(rule_row(tipo=tipo), Upload(name, io.BytesIO(content)), known_handlers=HANDLERS)
        assert reason in refused.value.errors["archivo"]
        assert db.session.scalars(select(Rule)).all() == []
    assert not list((media_root / "rules").glob("*"))


def test_a_file_is_not_written_when_the_rule_is_invalid(app, media_root):
    with app.app_context():
        with pytest.raises(RuleError) as refused:
            create_rule(rule_row(tipo="imagen", step=""), Upload("a.png", io.BytesIO(PNG)), known_handlers=HANDLERS)
    assert "step" in refused.value.errors
    assert not list((media_root / "rules").glob("*"))


def test_a_rule_with_a_file_keeps_or_drops_it(app, media_root):
    with app.app_context():
        rule = create_rule(rule_row(tipo="imagen"), Upload("a.png", io.BytesIO(PNG)), known_handlers=HANDLERS)
        path = rule.media[0].path
        update_rule(rule.id, rule_row(tipo="imagen", respuesta="Nuevo pie de foto"), known_handlers=HANDLERS)
        assert db.session.get(Rule, rule.id).media[0].path == path
        with pytest.raises(RuleError) as needs_media:
            update_rule(rule.id, rule_row(tipo="imagen"), remove_media=True, known_handlers=HANDLERS)
        assert "media_url" in needs_media.value.errors
        with pytest.raises(RuleError):
            update_rule(rule.id, rule_row(tipo="texto"), known_handlers=HANDLERS)
        update_rule(rule.id, rule_row(tipo="texto"), remove_media=True, known_handlers=HANDLERS)
        assert db.session.get(Rule, rule.id).media == [] and not (media_root / path).exists()
