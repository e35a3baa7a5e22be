"""The UI texts live in services/texts.py: every key the templates and scripts use exists in Spanish, and a
second language is added by registering one more dict."""
import html
import json
import re
import string
from pathlib import Path

import pytest

from services import texts

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_KEY = re.compile(r"(?<![\w.])t(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])")
# T("key") reads one text; T("prefix_" + value) one of a family (the prefix must start some key).
SCRIPT_KEY = re.compile(r"(?<![\w.])T\(\s*[\"'](\w+)[\"'](\s*\+)?")
BLOB = re.compile(r'<script type="application/json" id="ui-texts">(.*?)</script>', re.S)


def template_keys() -> dict[str, set[str]]:
    used = {}
    for path in sorted((ROOT / "templates").rglob("*.html")):
        keys = {a or b for a, b in TEMPLATE_KEY.findall(path.read_text(encoding="utf-8"))}
        if keys:
            used[str(path.relative_to(ROOT))] = keys
    return used


def script_keys() -> dict[str, set[str]]:
    """The keys each script reads; a family `T("prefix_" + value)` counts as its prefix followed by "*"."""
    return {str(path.relative_to(ROOT)): {key + ("*" if plus else "")
                                          for key, plus in SCRIPT_KEY.findall(path.read_text(encoding="utf-8"))}
            for path in sorted((ROOT / "static").glob("*.js"))}


def known(key: str) -> bool:
    if key.endswith("*"):
        return any(name.startswith(key[:-1]) for name in texts.SCRIPT_KEYS)
    return key in texts.SCRIPT_KEYS


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_used_by_a_template_exists_in_spanish():
    used = template_keys()
    # The pages moved to services/texts.py, so the scan cannot pass by finding nothing.
    for page in ("templates/base.html", "templates/login.html", "templates/_forms.html", "templates/config/rules.html",
                 "templates/config/flow.html", "templates/roles/user.html", "templates/quick_replies/form.html",
                 "templates/sandbox/simulator.html", "templates/tablero/index.html", "templates/chats/panel.html"):
        assert used.get(page), f"{page} no usa ningún texto de services/texts.py"
    missing = {page: sorted(keys - set(texts.ES)) for page, keys in used.items() if keys - set(texts.ES)}
    assert missing == {}


def test_every_key_a_script_reads_from_the_blob_exists_and_is_in_the_blob():
    used = script_keys()
    for script in ("static/messages.js", "static/panel.js", "static/simulator.js", "static/tablero.js"):
        assert used[script], f"{script} no lee textos de #ui-texts"
    missing = {name: sorted(key for key in keys if not known(key)) for name, keys in used.items()}
    assert {name: keys for name, keys in missing.items() if keys} == {}
    assert "sentiment_*" in used["static/panel.js"] and "sim_state_bot" in used["static/simulator.js"]
    assert texts.SCRIPT_KEYS <= set(texts.ES)


def test_spanish_is_assembled_from_areas_without_a_key_defined_twice():
    assert sum(len(area) for area in texts.AREAS) == len(texts.ES)
    assert all(isinstance(text, str) and text for text in texts.ES.values())
    assert texts.texts_for("xx") is texts.ES and texts.texts_for(None) is texts.ES


def fake_language() -> dict[str, str]:
    """Every text replaced by a marker that keeps the Spanish text's placeholders."""
    fake = {key: f"[xx:{key}]" + "".join(f" {{{name}}}" for name in sorted(placeholders(text)))
            for key, text in texts.ES.items()}
    fake["locale"] = "xx"
    return fake


@pytest.fixture
def second_language(monkeypatch):
    fake = fake_language()
    monkeypatch.setitem(texts.LANGUAGES, "xx", fake)
    return fake


def page_in(client, path: str, language: str) -> str:
    response = client.get(path, headers={"Accept-Language": language})
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def make_content(app):
    """A rule, a role and a quick reply, so the pages render their lists and not just the empty state."""
    with app.app_context():
        from extensions import db
        from models import QuickReply, Role, Rule
        db.session.add(Rule(step="inicio", input_text="hola", respuesta="Bienvenido", tipo="texto", prioridad=1,
                            siguiente_step="menu", avanzar=False))
        db.session.add(Role(name="ventas", keywords="comercial"))
        db.session.add(QuickReply(title="Saludo", text="Hola, ¿en qué le ayudo?", position=1))
        db.session.commit()


PAGES = {
    "/": ["nav_chats", "nav_rules", "nav_logout", "chats", "choose_chat"],
    "/simulador": ["sim_title", "sim_help", "sim_number_label", "sim_new", "sim_empty", "sim_legend_read"],
    "/tablero": ["tab_title", "tab_utc", "tab_from", "tab_apply", "tab_kpi_chats", "tab_chart_daily", "tab_code"],
    "/configuracion/reglas": ["rules_heading", "rules_hint_before", "rules_step", "badge_initial", "rule_new", "edit"],
    "/configuracion/reglas/nueva": ["rule_new", "rule_hint_step", "rule_file_legend", "save", "cancel", "max_mb"],
    "/configuracion/reglas/importar": ["import_title", "import_hint_before", "import_submit", "back_to_rules"],
    "/configuracion/reglas/flujo": ["flow_heading", "flow_svg_title", "flow_steps", "flow_rule_count_one",
                                    "flow_no_rules"],
    "/roles": ["roles_title", "roles_hint_before", "role_create", "role_users_other", "users_heading", "badge_admin",
               "badge_you"],
    "/roles/usuarios/nuevo": ["user_new", "user_hint_username", "user_hint_password", "user_create"],
    "/configuracion/botones": ["qr_title", "qr_hint", "qr_new", "move_up", "delete", "qr_delete_confirm"],
    "/configuracion/botones/nuevo": ["qr_new", "qr_hint_title", "qr_hint_files", "back_to_qr"],
}


def test_a_second_language_is_a_dict(app, admin_client, second_language):
    make_content(app)
    for path, keys in PAGES.items():
        page = html.unescape(page_in(admin_client, path, "xx"))
        assert '<html lang="xx">' in page, path
        for key in keys:
            assert f"[xx:{key}]" in page, (path, key)
        # And no Spanish from the page itself is left (user content and form labels aside).
        for key in keys:
            spanish_start = texts.ES[key].split("{")[0].strip()
            assert len(spanish_start) < 4 or spanish_start not in page, (path, key)
        spanish = page_in(admin_client, path, "es-MX,es;q=0.9")
        assert "[xx:" not in spanish and '<html lang="es">' in spanish, path


def test_scripts_get_the_texts_of_the_language_and_only_the_script_part(app, admin_client, second_language):
    for path in ("/", "/simulador", "/tablero"):
        blob = json.loads(BLOB.search(page_in(admin_client, path, "xx")).group(1))
        assert set(blob) == texts.SCRIPT_KEYS, path
        assert blob["write"] == "[xx:write]" and blob["sim_state_new"] == "[xx:sim_state_new]"
        assert blob["tab_words_note"] == "[xx:tab_words_note] {limit} {sample}"
        spanish = json.loads(BLOB.search(page_in(admin_client, path, "es")).group(1))
        assert spanish == texts.for_scripts(texts.ES)
    # Pages without scripts carry no blob (the flow page is plain SVG, without a single <script).
    for path in ("/configuracion/reglas/flujo", "/roles", "/configuracion/reglas"):
        assert 'id="ui-texts"' not in page_in(admin_client, path, "es"), path


def test_login_page_in_the_second_language(client, second_language):
    page = page_in(client, "/login", "xx;q=1, es;q=0.5")
    assert "[xx:login_title]" in page and "[xx:login_submit]" in page and "Entrar" not in page
    assert ">Entrar</button>" in page_in(client, "/login", "fr")


def test_missing_key_in_a_language_falls_back_to_spanish(client, monkeypatch):
    monkeypatch.setitem(texts.LANGUAGES, "xx", {"locale": "xx", "login_submit": "Enter"})
    page = page_in(client, "/login", "xx")
    assert ">Enter</button>" in page and "<h1>Iniciar sesión</h1>" in page
