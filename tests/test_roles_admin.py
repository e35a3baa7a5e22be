import pytest
from sqlalchemy import func, select

from extensions import db
from models import Chat, Role, Rule, User, chat_roles, user_roles
from services.auth import UserError
from services.conversation import role_for_keyword
from services.roles import set_user_active, update_user
from tests.conftest import csrf_token, login

XSS = "<script>alert(1)</script>"


def post(client, page, action, **data):
    """Submit a form as a browser would: the CSRF token comes from the page that shows the form."""
    return client.post(action, data={**data, "csrf_token": csrf_token(client, page)})


def role_id(app, name):
    with app.app_context():
        return db.session.scalar(select(Role.id).filter_by(name=name))


def user_row(app, username):
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username=username))
        return None if user is None else {"id": user.id, "admin": user.is_admin, "active": user.active,
                                          "roles": sorted(r.name for r in user.roles)}


def make_role(app, name, keywords=""):
    with app.app_context():
        role = Role(name=name, keywords=keywords)
        db.session.add(role)
        db.session.commit()
        return role.id


def make_chat(app, numero, *role_ids):
    with app.app_context():
        chat = Chat(numero=numero, roles=[db.session.get(Role, i) for i in role_ids])
        db.session.add(chat)
        db.session.commit()
        return chat.id


@pytest.fixture
def agent_client(app, make_user):
    username, password = make_user("agente", "clave-de-agente", roles=["ventas"])
    client = app.test_client()
    assert login(client, username, password).status_code == 302
    return client


def routes(app):
    """Every route of the /roles area, with a form that would be valid."""
    role = make_role(app, "Soporte")
    target = user_row(app, "agente")["id"]
    return [
        ("GET", "/roles", None),
        ("POST", "/roles/nuevo", {"name": "Nuevo"}),
        ("GET", f"/roles/{role}/editar", None),
        ("POST", f"/roles/{role}/editar", {"name": "Otro"}),
        ("POST", f"/roles/{role}/eliminar", {}),
        ("GET", "/roles/usuarios/nuevo", None),
        ("POST", "/roles/usuarios/nuevo", {"username": "nuevo", "password": "clave-larga-1",
                                           "confirm": "clave-larga-1"}),
        ("GET", f"/roles/usuarios/{target}", None),
        ("POST", f"/roles/usuarios/{target}", {"is_admin": "y"}),
        ("POST", f"/roles/usuarios/{target}/contrasena", {"password": "otra-clave-1", "confirm": "otra-clave-1"}),
        ("POST", f"/roles/usuarios/{target}/desactivar", {}),
        ("POST", f"/roles/usuarios/{target}/activar", {}),
    ]


def test_anonymous_visitors_are_sent_to_login(app, client, make_user):
    make_user("agente", "clave-de-agente")
    token = csrf_token(client, "/login")
    for method, path, data in routes(app):
        response = client.get(path) if method == "GET" else client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, path)
    assert user_row(app, "agente")["active"] and not user_row(app, "agente")["admin"]
    assert role_id(app, "Soporte") and not role_id(app, "Nuevo")


def test_agents_get_403_on_every_route(app, agent_client):
    token = csrf_token(agent_client, "/")
    for method, path, data in routes(app):
        if method == "GET":
            response = agent_client.get(path)
        else:
            response = agent_client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, (method, path)
    assert user_row(app, "agente")["admin"] is False
    assert role_id(app, "Soporte") and not role_id(app, "Nuevo") and not role_id(app, "Otro")


def test_posts_without_csrf_token_are_refused(app, admin_client, make_user):
    make_user("agente", "clave-de-agente")
    for method, path, data in routes(app):
        if method == "POST":
            assert admin_client.post(path, data=data).status_code == 400, path
    assert role_id(app, "Soporte") and not role_id(app, "Nuevo")
    assert user_row(app, "agente")["active"] and not user_row(app, "agente")["admin"]
    assert user_row(app, "nuevo") is None


def test_admin_creates_renames_and_edits_keywords_of_a_role(app, admin_client, make_user):
    page = admin_client.get("/roles")
    assert page.status_code == 200 and "Roles y usuarios" in page.get_data(as_text=True)
    response = post(admin_client, "/roles", "/roles/nuevo", name="  Ventas ", keywords="comercial, , Cotización")
    assert response.status_code == 302
    ventas = role_id(app, "Ventas")
    make_user("vendedor", "clave-de-venta", roles=["Ventas"])
    make_chat(app, "5215500000001", ventas)

    form = admin_client.get(f"/roles/{ventas}/editar").get_data(as_text=True)
    assert 'value="Ventas"' in form and "comercial, Cotización" in form
    response = post(admin_client, f"/roles/{ventas}/editar", f"/roles/{ventas}/editar",
                    name="Comercial y ventas", keywords="cotización, precios, precios")
    assert response.status_code == 302
    with app.app_context():
        role = db.session.get(Role, ventas)
        assert (role.name, role.keywords) == ("Comercial y ventas", "cotización, precios")
        assert role_for_keyword("PRECIOS").id == ventas
        assert role_for_keyword("Cotizacion").id == ventas
    assert user_row(app, "vendedor")["roles"] == ["Comercial y ventas"]
    with app.app_context():
        assert [r.name for r in db.session.scalar(select(Chat)).roles] == ["Comercial y ventas"]
    listing = admin_client.get("/roles").get_data(as_text=True)
    assert "Comercial y ventas" in listing and "1 usuario · 1 chat" in listing


def test_renaming_a_role_named_by_rules_keeps_the_old_name_as_keyword(app, admin_client):
    ventas = make_role(app, "ventas")
    with app.app_context():
        db.session.add(Rule(step="inicio", input_text="comprar", respuesta="Le atiende ventas", rol_keyword="Ventas"))
        db.session.commit()
    response = post(admin_client, f"/roles/{ventas}/editar", f"/roles/{ventas}/editar", name="Comercial", keywords="")
    assert response.status_code == 302
    assert "sigan llegando a este rol" in admin_client.get("/roles").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Role, ventas).keywords == "ventas"
        assert role_for_keyword("Ventas").id == ventas


@pytest.mark.parametrize("name, keywords, message", [
    ("VENTAS", "", "Ya existe el rol «Ventas»"),
    ("Ventás", "", "Ya existe el rol «Ventas»"),
    ("comercial", "", "«comercial» ya es palabra clave del rol «Ventas»"),
    ("Soporte", "Comercial", "La palabra clave «Comercial» ya lleva al rol «Ventas»"),
    ("", "", "Escriba el nombre del rol."),
    ("x" * 81, "", "hasta 80 caracteres"),
    ("¡¿?!", "", "al menos una letra o un número"),
])
def test_duplicate_or_invalid_role_names_are_refused_on_the_page(app, admin_client, name, keywords, message):
    make_role(app, "Ventas", "comercial")
    response = post(admin_client, "/roles", "/roles/nuevo", name=name, keywords=keywords)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Role)) == 1


def test_renaming_onto_another_role_is_refused_and_nothing_changes(app, admin_client):
    make_role(app, "Ventas")
    soporte = make_role(app, "Soporte", "ayuda")
    response = post(admin_client, f"/roles/{soporte}/editar", f"/roles/{soporte}/editar",
                    name="ventas", keywords="técnico")
    assert response.status_code == 400 and "Ya existe el rol «Ventas»" in response.get_data(as_text=True)
    with app.app_context():
        role = db.session.get(Role, soporte)
        assert (role.name, role.keywords) == ("Soporte", "ayuda")


def test_deleting_a_role_detaches_it_from_users_and_chats(app, admin_client, make_user):
    ventas, soporte = make_role(app, "Ventas"), make_role(app, "Soporte")
    make_user("mixto", "clave-de-mixto", roles=["Ventas", "Soporte"])
    chat = make_chat(app, "5215500000002", ventas, soporte)
    response = post(admin_client, "/roles", f"/roles/{ventas}/eliminar")
    assert response.status_code == 302
    assert "Rol «Ventas» eliminado" in admin_client.get("/roles").get_data(as_text=True)
    assert role_id(app, "Ventas") is None
    assert user_row(app, "mixto")["roles"] == ["Soporte"]
    with app.app_context():
        assert [r.name for r in db.session.get(Chat, chat).roles] == ["Soporte"]
        for table in (user_roles, chat_roles):
            assert db.session.scalar(select(func.count()).select_from(table).where(table.c.role_id == ventas)) == 0
    assert admin_client.post(f"/roles/{ventas}/eliminar",
                             data={"csrf_token": csrf_token(admin_client, "/roles")}).status_code == 404


def test_role_name_and_keywords_are_escaped(app, admin_client):
    response = post(admin_client, "/roles", "/roles/nuevo", name=XSS, keywords=f"{XSS}x, <b>negrita</b>")
    assert response.status_code == 302
    for path in ("/roles", f"/roles/{role_id(app, XSS)}/editar"):
        page = admin_client.get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
        assert "<b>negrita" not in page


def test_admin_creates_a_user_with_roles_who_can_then_sign_in(app, admin_client):
    ventas, soporte = make_role(app, "Ventas"), make_role(app, "Soporte")
    form = admin_client.get("/roles/usuarios/nuevo").get_data(as_text=True)
    assert 'type="checkbox"' in form and "Ventas" in form and "Soporte" in form
    response = post(admin_client, "/roles/usuarios/nuevo", "/roles/usuarios/nuevo", username="laura",
                    password="clave-de-laura", confirm="clave-de-laura", roles=[str(ventas), str(soporte)])
    assert response.status_code == 302
    assert user_row(app, "laura") == {"id": user_row(app, "laura")["id"], "admin": False, "active": True,
                                      "roles": ["Soporte", "Ventas"]}
    post(admin_client, "/roles/usuarios/nuevo", "/roles/usuarios/nuevo", username="jefe2", password="clave-de-jefe",
         confirm="clave-de-jefe", is_admin="y")
    assert user_row(app, "jefe2")["admin"] is True
    other = app.test_client()
    assert login(other, "laura", "clave-de-laura").status_code == 302
    assert other.get("/roles").status_code == 403


@pytest.mark.parametrize("data, message", [
    ({"username": "JEFA", "password": "clave-larga-1", "confirm": "clave-larga-1"}, "Ya existe el usuario «jefa»"),
    ({"username": "jéfa", "password": "clave-larga-1", "confirm": "clave-larga-1"}, "Ya existe el usuario «jefa»"),
    ({"username": "nuevo", "password": "corta", "confirm": "corta"}, "al menos 8 caracteres"),
    ({"username": "nuevo", "password": "clave-larga-1", "confirm": "clave-larga-2"}, "Las contraseñas no coinciden"),
    ({"username": "con espacio", "password": "clave-larga-1", "confirm": "clave-larga-1"}, "letras, números"),
    ({"username": "nuevo", "password": "clave-larga-1", "confirm": "clave-larga-1", "roles": "999999"},
     "ya no existe"),
])
def test_invalid_or_duplicate_users_are_refused_on_the_page(app, admin_client, data, message):
    response = post(admin_client, "/roles/usuarios/nuevo", "/roles/usuarios/nuevo", **data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_admin_changes_roles_and_admin_flag(app, admin_client, make_user):
    soporte = make_role(app, "Soporte")
    make_user("pablo", "clave-de-pablo", roles=["Ventas"])
    pablo = user_row(app, "pablo")["id"]
    page = f"/roles/usuarios/{pablo}"
    assert post(admin_client, page, page, roles=[str(soporte)], is_admin="y").status_code == 302
    assert user_row(app, "pablo") == {"id": pablo, "admin": True, "active": True, "roles": ["Soporte"]}
    assert post(admin_client, page, page).status_code == 302
    assert user_row(app, "pablo") == {"id": pablo, "admin": False, "active": True, "roles": []}
    assert role_id(app, "Ventas") and role_id(app, "Soporte")


def test_disabled_user_cannot_sign_in_and_loses_an_open_session(app, admin_client, make_user):
    make_user("agente", "clave-de-agente")
    agent = app.test_client()
    assert login(agent, "agente", "clave-de-agente").status_code == 302
    assert agent.get("/").status_code == 200
    page = f"/roles/usuarios/{user_row(app, 'agente')['id']}"
    assert post(admin_client, page, page + "/desactivar").status_code == 302
    assert user_row(app, "agente")["active"] is False
    assert "desactivado" in admin_client.get(page).get_data(as_text=True)
    response = agent.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert login(agent, "agente", "clave-de-agente").status_code == 401
    assert post(admin_client, page, page + "/activar").status_code == 302
    assert login(agent, "agente", "clave-de-agente").status_code == 302
    assert agent.get("/").status_code == 200


def test_password_reset_lets_the_new_password_in_and_not_the_old_one(app, admin_client, make_user):
    make_user("agente", "clave-vieja-1")
    page = f"/roles/usuarios/{user_row(app, 'agente')['id']}"
    response = post(admin_client, page, page + "/contrasena", password="corta", confirm="corta")
    assert response.status_code == 400 and "al menos 8 caracteres" in response.get_data(as_text=True)
    assert post(admin_client, page, page + "/contrasena", password="clave-nueva-1",
                confirm="clave-nueva-1").status_code == 302
    other = app.test_client()
    assert login(other, "agente", "clave-vieja-1").status_code == 401
    assert login(other, "agente", "clave-nueva-1").status_code == 302


def test_admin_cannot_disable_or_demote_themselves(app, admin_client):
    page = f"/roles/usuarios/{user_row(app, 'jefa')['id']}"
    response = post(admin_client, page, page + "/desactivar")
    assert response.status_code == 400 and "No puede desactivar su propia cuenta" in response.get_data(as_text=True)
    response = post(admin_client, page, page)
    assert response.status_code == 400
    assert "No puede quitarse a sí mismo el permiso de administrador" in response.get_data(as_text=True)
    assert user_row(app, "jefa")["admin"] is True and user_row(app, "jefa")["active"] is True
    assert admin_client.get("/roles").status_code == 200


def test_last_active_admin_cannot_be_disabled_or_demoted(app, admin_client, make_user):
    make_user("otro", "clave-de-otro", admin=True)
    jefa, otro = user_row(app, "jefa")["id"], user_row(app, "otro")["id"]
    page = f"/roles/usuarios/{otro}"
    assert post(admin_client, page, page + "/desactivar").status_code == 302
    with app.app_context():
        with pytest.raises(UserError, match="último administrador activo"):
            set_user_active(jefa, False, actor_id=None)
        with pytest.raises(UserError, match="último administrador activo"):
            update_user(jefa, False, [], actor_id=None)
        assert set_user_active(otro, True, actor_id=jefa).active
        assert not update_user(jefa, False, [], actor_id=otro).is_admin
    assert user_row(app, "jefa") == {"id": jefa, "admin": False, "active": True, "roles": []}
    assert user_row(app, "otro") == {"id": otro, "admin": True, "active": True, "roles": []}


def test_unknown_ids_answer_404(admin_client):
    token = csrf_token(admin_client, "/roles")
    assert admin_client.get("/roles/999999/editar").status_code == 404
    assert admin_client.get("/roles/usuarios/999999").status_code == 404
    assert admin_client.post("/roles/usuarios/999999/desactivar", data={"csrf_token": token}).status_code == 404
