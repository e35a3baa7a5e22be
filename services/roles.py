"""Roles (with the keywords that attach chats to them) and the users who hold them, as administered from /roles."""
import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Role, Rule, User, chat_roles, user_roles
from services.auth import UserError, create_user, end_sessions, hash_password
from services.text import fold_accents, normalize

log = logging.getLogger(__name__)
NAME_MAX = 80
MIN_PASSWORD = 8


class RoleError(ValueError):
    """A role cannot be saved as asked; `field` names the form field to fix."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RoleSummary:
    role: Role
    keywords: list[str]
    users: int
    chats: int
    rules: int


@dataclass(frozen=True)
class RoleSaved:
    role: Role
    kept_keyword: str | None = None


def split_keywords(text: str | None) -> list[str]:
    """The keywords of a comma-separated text, trimmed, without empties or repeats."""
    seen, keywords = set(), []
    for keyword in (text or "").split(","):
        keyword = " ".join(keyword.split())
        if keyword and normalize(keyword) not in seen:
            seen.add(normalize(keyword))
            keywords.append(keyword)
    return keywords


def _matches(role: Role) -> set[str]:
    """Every normalised word that names this role (how services.conversation.role_for_keyword compares)."""
    return {normalize(role.name)} | {normalize(k) for k in split_keywords(role.keywords)}


def _rule_keywords() -> list[str]:
    return [normalize(k) for k in db.session.scalars(select(Rule.rol_keyword).where(Rule.rol_keyword.is_not(None)))]


def list_roles() -> list[RoleSummary]:
    """Every role by name, with how many users, chats and bot rules point at it."""
    users = dict(db.session.execute(select(user_roles.c.role_id, func.count()).group_by(user_roles.c.role_id)).all())
    chats = dict(db.session.execute(select(chat_roles.c.role_id, func.count()).group_by(chat_roles.c.role_id)).all())
    keywords = _rule_keywords()
    return [RoleSummary(role, split_keywords(role.keywords), users.get(role.id, 0), chats.get(role.id, 0),
                        sum(1 for k in keywords if k in _matches(role))) for role in all_roles()]


def get_role(role_id: int) -> Role | None:
    return db.session.get(Role, role_id)


def all_roles() -> list[Role]:
    return sorted(db.session.scalars(select(Role)), key=lambda r: fold_accents(r.name.casefold()))


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise RoleError("Escriba el nombre del rol.")
    if len(name) > NAME_MAX:
        raise RoleError(f"El nombre del rol admite hasta {NAME_MAX} caracteres.")
    if not normalize(name):
        raise RoleError("El nombre del rol debe tener al menos una letra o un número.")
    return name


def _clean_keywords(text: str, name: str) -> list[str]:
    keywords = []
    for keyword in split_keywords(text):
        if len(keyword) > NAME_MAX:
            raise RoleError(f"La palabra clave «{keyword[:20]}…» pasa de {NAME_MAX} caracteres.", "keywords")
        if not normalize(keyword):
            raise RoleError(f"La palabra clave «{keyword}» debe tener al menos una letra o un número.", "keywords")
        if normalize(keyword) != normalize(name):
            keywords.append(keyword)
    return keywords


def _check_unique(name: str, keywords: list[str], role_id: int | None) -> None:
    """Names and keywords must point at one role only, compared as the bot compares them."""
    for other in db.session.scalars(select(Role).where(Role.id != role_id) if role_id else select(Role)):
        taken = _matches(other)
        if normalize(name) == normalize(other.name):
            raise RoleError(f"Ya existe el rol «{other.name}»; los nombres se comparan sin distinguir mayúsculas, "
                            "acentos ni signos.")
        if normalize(name) in taken:
            raise RoleError(f"«{name}» ya es palabra clave del rol «{other.name}».")
        for keyword in keywords:
            if normalize(keyword) in taken:
                raise RoleError(f"La palabra clave «{keyword}» ya lleva al rol «{other.name}».", "keywords")


def _commit_role(role: Role) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise RoleError(f"Ya existe un rol llamado «{role.name}».") from None


def create_role(name: str, keywords: str = "") -> Role:
    """Add a role; RoleError says what to fix (empty, too long, or already naming another role)."""
    name = _clean_name(name)
    words = _clean_keywords(keywords, name)
    _check_unique(name, words, None)
    role = Role(name=name, keywords=", ".join(words))
    db.session.add(role)
    _commit_role(role)
    log.info("role %s created", role.name)
    return role


def update_role(role_id: int, name: str, keywords: str) -> RoleSaved:
    """Rename a role and replace its keywords; its users and chats stay attached.

    When bot rules name the role by its old name, that name is kept as a keyword so those rules still
    reach it (`kept_keyword` says so).
    """
    role = db.session.get(Role, role_id)
    if role is None:
        raise LookupError(role_id)
    name = _clean_name(name)
    words = _clean_keywords(keywords, name)
    kept = None
    old = normalize(role.name)
    if old != normalize(name) and old in _rule_keywords() and old not in {normalize(w) for w in words}:
        kept = role.name
        words.append(role.name)
    _check_unique(name, words, role.id)
    previous = role.name
    role.name, role.keywords = name, ", ".join(words)
    _commit_role(role)
    log.info("role %s saved as %s (keywords: %s)", previous, role.name, role.keywords)
    return RoleSaved(role, kept)


def delete_role(role_id: int) -> str:
    """Remove a role, detaching it from its users and chats; returns its name."""
    role = db.session.get(Role, role_id)
    if role is None:
        raise LookupError(role_id)
    name = role.name
    db.session.execute(delete(user_roles).where(user_roles.c.role_id == role_id))
    db.session.execute(delete(chat_roles).where(chat_roles.c.role_id == role_id))
    db.session.delete(role)
    db.session.commit()
    log.info("role %s deleted", name)
    return name


def list_users() -> list[User]:
    return sorted(db.session.scalars(select(User)), key=lambda u: fold_accents(u.username.casefold()))


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def _roles_by_id(role_ids) -> list[Role]:
    wanted = {int(i) for i in role_ids}
    roles = list(db.session.scalars(select(Role).where(Role.id.in_(wanted)))) if wanted else []
    if len(roles) != len(wanted):
        raise UserError("Uno de los roles elegidos ya no existe; recargue la página y vuelva a elegir.")
    return roles


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"La contraseña debe tener al menos {MIN_PASSWORD} caracteres.")


def add_user(username: str, password: str, admin: bool = False, role_ids=()) -> User:
    """Create a user; names are unique whatever their case or accents (as MariaDB compares them)."""
    username = (username or "").strip()
    _check_password(password)
    folded = fold_accents(username.casefold())
    for existing in db.session.scalars(select(User.username)):
        if fold_accents(existing.casefold()) == folded:
            raise UserError(f"Ya existe el usuario «{existing}».")
    roles = _roles_by_id(role_ids)
    try:
        user = create_user(username, password, [role.name for role in roles], admin)
    except IntegrityError:
        db.session.rollback()
        raise UserError(f"Ya existe el usuario «{username}».") from None
    except UserError as error:
        db.session.rollback()
        message = str(error)
        raise UserError(message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")) from None
    log.info("user %s created (admin=%s, roles=%s)", user.username, admin, [r.name for r in roles])
    return user


def _user_for_change(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    return user


def _other_active_admins(user: User) -> int:
    """Active administrators besides `user`, locking their rows so two admins cannot demote each other at once."""
    ids = db.session.scalars(select(User.id).where(User.is_admin.is_(True), User.active.is_(True))
                             .with_for_update()).all()
    return sum(1 for i in ids if i != user.id)


def _keep_an_admin(user: User, actor_id: int | None, own: str, last: str) -> None:
    if user.id == actor_id:
        raise UserError(own)
    if user.is_admin and user.active and _other_active_admins(user) == 0:
        raise UserError(f"{last}: es el último administrador activo. Haga administrador a otro usuario primero.")


def update_user(user_id: int, admin: bool, role_ids, actor_id: int | None) -> User:
    """Set a user's administrator flag and roles. An admin cannot demote themselves nor the last active admin."""
    user = _user_for_change(user_id)
    roles = _roles_by_id(role_ids)
    if user.is_admin and not admin:
        try:
            _keep_an_admin(user, actor_id,
                           "No puede quitarse a sí mismo el permiso de administrador; pídaselo a otro administrador.",
                           f"No se puede quitar el permiso de administrador a {user.username}")
        except UserError:
            db.session.rollback()
            raise
    user.is_admin, user.roles = admin, roles
    db.session.commit()
    log.info("user %s saved (admin=%s, roles=%s)", user.username, admin, [r.name for r in roles])
    return user


def set_user_active(user_id: int, active: bool, actor_id: int | None) -> User:
    """Enable or disable a user; a disabled user cannot sign in and their open sessions stop working."""
    user = _user_for_change(user_id)
    if user.active and not active:
        try:
            _keep_an_admin(user, actor_id, "No puede desactivar su propia cuenta; pídaselo a otro administrador.",
                           f"No se puede desactivar a {user.username}")
        except UserError:
            db.session.rollback()
            raise
        end_sessions(user)
    user.active = active
    db.session.commit()
    log.info("user %s %s", user.username, "enabled" if active else "disabled")
    return user


def reset_password(user_id: int, password: str) -> User:
    """Give a user a new password (at least 8 characters); the sessions they had open end."""
    user = _user_for_change(user_id)
    _check_password(password)
    user.password_hash = hash_password(password)
    end_sessions(user)
    db.session.commit()
    log.info("password of %s reset", user.username)
    return user

