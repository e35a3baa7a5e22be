"""Sign-in and sign-out."""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from extensions import limiter, login_manager
from services.auth import authenticate, sign_out, user_for_session

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"
login_manager.login_message = "Inicie sesión para continuar."
login_manager.user_loader(user_for_session)


class LoginForm(FlaskForm):
    username = StringField("Usuario", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Contraseña", validators=[DataRequired(), Length(max=256)])


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("chat.index")


def _submitted_username() -> str:
    return "login-user:" + request.form.get("username", "").strip().lower()[:80]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               error_message="Demasiados intentos de inicio de sesión; espere un minuto.")
@limiter.limit(lambda: current_app.config["LOGIN_USER_RATE_LIMIT"], key_func=_submitted_username, methods=["POST"],
               error_message="Demasiados intentos para este usuario; espere un minuto antes de volver a intentarlo.")
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Usuario o contraseña incorrectos.", "error")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form), 400 if form.errors else 200


@bp.post("/logout")
@login_required
def logout():
    sign_out(current_user.id)
    logout_user()
    return redirect(url_for("auth.login"))
