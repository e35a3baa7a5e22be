"""Administration of roles (and their keywords) and of users (their roles, admin flag, password, access)."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from routes.guards import admin_required
from services.auth import UserError
from services.roles import (MIN_PASSWORD, NAME_MAX, RoleError, add_user, all_roles, create_role, delete_role,
                            get_role, get_user, list_roles, list_users, reset_password, set_user_active,
                            split_keywords, update_role, update_user)

bp = Blueprint("roles", __name__, url_prefix="/roles")


class RoleForm(FlaskForm):
    name = StringField("Nombre", validators=[
        DataRequired("Escriba el nombre del rol."),
        Length(max=NAME_MAX, message=f"El nombre del rol admite hasta {NAME_MAX} caracteres.")])
    keywords = StringField("Palabras clave (separadas por comas)", validators=[
        Length(max=2000, message="Las palabras clave admiten hasta 2000 caracteres en total.")])


class RoleChoices(SelectMultipleField):
    """Roles as checkboxes, with Spanish messages for a tampered or stale choice."""
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Elija los roles de la lista.") from None

    def pre_validate(self, form):
        known = {value for value, _label in self.choices}
        if any(value not in known for value in self.data or ()):
            raise ValidationError("Uno de los roles elegidos ya no existe; recargue la página y vuelva a elegir.")


class UserAccessForm(FlaskForm):
    is_admin = BooleanField("Administrador: ve todos los chats y la configuración")
    roles = RoleChoices("Roles", coerce=int)


class PasswordForm(FlaskForm):
    password = PasswordField("Contraseña", validators=[
        DataRequired("Escriba la contraseña."),
        Length(min=MIN_PASSWORD, message=f"La contraseña debe tener al menos {MIN_PASSWORD} caracteres."),
        Length(max=256, message="La contraseña admite hasta 256 caracteres.")])
    confirm = PasswordField("Repita la contraseña", validators=[EqualTo("password", "Las contraseñas no coinciden.")])


class NewUserForm(PasswordForm, UserAccessForm):
    username = StringField("Usuario", validators=[
        DataRequired("Escriba el nombre de usuario."),
        Length(max=80, message="El nombre de usuario admite hasta 80 caracteres.")])


def _with_role_choices(form: UserAccessForm) -> UserAccessForm:
    form.roles.choices = [(role.id, role.name) for role in all_roles()]
    return form


def _render_index(role_form: RoleForm):
    return render_template("roles/index.html", roles=list_roles(), users=list_users(),
                           form=role_form), 400 if role_form.errors else 200


@bp.get("", strict_slashes=False)
@admin_required
def index():
    return _render_index(RoleForm(formdata=None))


@bp.post("/nuevo")
@admin_required
def new_role():
    form = RoleForm()
    if form.validate_on_submit():
        try:
            role = create_role(form.name.data, form.keywords.data)
        except RoleError as error:
            form[error.field].errors = [*form[error.field].errors, str(error)]
        else:
            flash(f"Rol «{role.name}» creado.")
            return redirect(url_for(".index", _anchor=f"rol-{role.id}"))
    return _render_index(form)


@bp.route("/<int:role_id>/editar", methods=["GET", "POST"])
@admin_required
def edit_role(role_id: int):
    role = get_role(role_id) or abort(404)
    form = RoleForm(data={"name": role.name, "keywords": ", ".join(split_keywords(role.keywords))})
    if form.validate_on_submit():
        try:
            saved = update_role(role_id, form.name.data, form.keywords.data)
        except RoleError as error:
            form[error.field].errors = [*form[error.field].errors, str(error)]
        else:
            flash(f"Rol «{saved.role.name}» guardado.")
            if saved.kept_keyword:
                flash(f"Hay reglas del bot que asignan el rol «{saved.kept_keyword}»; ese nombre quedó como "
                      "palabra clave para que sigan llegando a este rol.")
            return redirect(url_for(".index", _anchor=f"rol-{role_id}"))
    return render_template("roles/role_form.html", form=form, role=role), 400 if form.errors else 200


@bp.post("/<int:role_id>/eliminar")
@admin_required
def remove_role(role_id: int):
    try:
        name = delete_role(role_id)
    except LookupError:
        abort(404)
    flash(f"Rol «{name}» eliminado; sus usuarios y chats ya no lo tienen.")
    return redirect(url_for(".index"))


@bp.route("/usuarios/nuevo", methods=["GET", "POST"])
@admin_required
def new_user():
    form = _with_role_choices(NewUserForm())
    error = None
    if form.validate_on_submit():
        try:
            user = add_user(form.username.data, form.password.data, form.is_admin.data, form.roles.data)
        except UserError as refused:
            error = str(refused)
        else:
            flash(f"Usuario «{user.username}» creado.")
            return redirect(url_for(".index", _anchor=f"usuario-{user.id}"))
    failed = bool(form.errors or error)
    return render_template("roles/new_user.html", form=form, error=error), 400 if failed else 200


def _render_user(user, access: UserAccessForm | None = None, password: PasswordForm | None = None,
                 error: str | None = None):
    access = access or _with_role_choices(UserAccessForm(
        formdata=None, data={"is_admin": user.is_admin, "roles": [role.id for role in user.roles]}))
    password = password or PasswordForm(formdata=None)
    failed = bool(access.errors or password.errors or error)
    return render_template("roles/user.html", user=user, access=access, password=password, error=error,
                           is_self=user.id == current_user.id), 400 if failed else 200


@bp.get("/usuarios/<int:user_id>")
@admin_required
def user_page(user_id: int):
    return _render_user(get_user(user_id) or abort(404))


@bp.post("/usuarios/<int:user_id>")
@admin_required
def save_user(user_id: int):
    user = get_user(user_id) or abort(404)
    form = _with_role_choices(UserAccessForm())
    if form.validate_on_submit():
        try:
            update_user(user_id, form.is_admin.data, form.roles.data, current_user.id)
        except UserError as error:
            return _render_user(user, access=form, error=str(error))
        flash(f"Usuario «{user.username}» guardado.")
        return redirect(url_for(".user_page", user_id=user_id))
    return _render_user(user, access=form)


@bp.post("/usuarios/<int:user_id>/contrasena")
@admin_required
def change_password(user_id: int):
    user = get_user(user_id) or abort(404)
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            changed = reset_password(user_id, form.password.data)
        except UserError as error:
            return _render_user(user, password=form, error=str(error))
        if changed.id == current_user.id:
            login_user(changed)  # the change ended every session of this user; this browser stays signed in
        flash(f"Contraseña de «{user.username}» cambiada.")
        return redirect(url_for(".user_page", user_id=user_id))
    return _render_user(user, password=form)


@bp.post("/usuarios/<int:user_id>/<any(activar, desactivar):action>")
@admin_required
def set_active(user_id: int, action: str):
    user = get_user(user_id) or abort(404)
    try:
        set_user_active(user_id, action == "activar", current_user.id)
    except UserError as error:
        return _render_user(user, error=str(error))
    flash(f"Usuario «{user.username}» {'activado' if action == 'activar' else 'desactivado: ya no puede entrar'}.")
    return redirect(url_for(".user_page", user_id=user_id))
