"""Users, passwords and roles."""
import functools
import hashlib
import hmac
import logging
import re
import secrets

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import db
from models import Role, User
from models.types import utcnow

log = logging.getLogger(__name__)
LEGACY_SHA256 = re.compile(r"^[0-9a-f]{64}$")
WRAPPED_PREFIX = "sha256$"  # a Werkzeug hash of a legacy SHA-256 hex digest (scripts/rehash_passwords.py)


class UserError(ValueError):
    """A user cannot be created or changed as asked."""


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def password_matches(stored: str, password: str) -> bool:
    """Check a password against a Werkzeug hash, a wrapped legacy hash or a bare legacy SHA-256."""
    if LEGACY_SHA256.match(stored):
        return hmac.compare_digest(stored, _sha256(password))
    if stored.startswith(WRAPPED_PREFIX):
        return check_password_hash(stored[len(WRAPPED_PREFIX):], _sha256(password))
    return check_password_hash(stored, password)


def needs_rehash(stored: str) -> bool:
    return bool(LEGACY_SHA256.match(stored)) or stored.startswith(WRAPPED_PREFIX)


def wrap_legacy_hash(stored: str) -> str:
    """Protect a bare SHA-256 without knowing the password; the next login replaces it."""
    return WRAPPED_PREFIX + generate_password_hash(stored)


@functools.cache
def _stand_in_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, re-hashing a legacy hash on the way; else None.

    An unknown or disabled user costs the same hash check as a wrong password, so the answer's timing does not
    tell which usernames exist."""
    user = db.session.scalar(select(User).filter_by(username=username.strip()))
    matches = password_matches(user.password_hash if user else _stand_in_hash(), password)
    if user is None or not user.active or not matches:
        log.info("login refused for %r", username[:80])
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        log.info("legacy password hash of %s upgraded", user.username)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def user_for_session(session_id: str) -> User | None:
    """The active user a session (or remember-me cookie) was issued to, if it has not been ended since."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    return user if user and user.active and user.session_version == int(version) else None


def end_sessions(user: User) -> None:
    """Void every session and remember-me cookie issued to `user` so far, in the caller's transaction."""
    user.session_version = User.session_version + 1


def sign_out(user_id: int) -> None:
    """Log a user out: this browser's cookie and any copy of it, and the user's other sessions, stop working."""
    user = db.session.get(User, user_id)
    if user is not None:
        end_sessions(user)
        db.session.commit()
        log.info("%s signed out", user.username)


def roles_named(names) -> list[Role]:
    """Roles by name, creating the missing ones."""
    roles = []
    for name in dict.fromkeys(n.strip() for n in names if n and n.strip()):
        role = db.session.scalar(select(Role).filter_by(name=name))
        if role is None:
            role = Role(name=name, keywords="")
            db.session.add(role)
        roles.append(role)
    return roles


def create_user(username: str, password: str, roles=(), admin: bool = False) -> User:
    username = username.strip()
    if not re.fullmatch(r"[\w.@+-]{2,80}", username):
        raise UserError("el nombre de usuario debe tener 2 a 80 letras, números o . @ + - _")
    if len(password) < 8:
        raise UserError("la contraseña debe tener al menos 8 caracteres")
    if db.session.scalar(select(User).filter_by(username=username)):
        raise UserError(f"el usuario {username!r} ya existe")
    user = User(username=username, password_hash=hash_password(password), is_admin=admin, active=True,
                roles=roles_named(roles))
    db.session.add(user)
    db.session.commit()
    return user


def ensure_admin(password: str | None) -> str | None:
    """Create the `admin` user if missing; returns the generated password when one was made up."""
    if db.session.scalar(select(User).filter_by(username="admin")):
        return None
    generated = None if password else secrets.token_urlsafe(12)
    create_user("admin", password or generated, admin=True)
    return generated


def rehash_legacy_passwords() -> int:
    """Wrap every bare SHA-256 password hash in a Werkzeug hash; returns how many."""
    count = 0
    for user in db.session.scalars(select(User)):
        if LEGACY_SHA256.match(user.password_hash):
            user.password_hash = wrap_legacy_hash(user.password_hash)
            count += 1
    db.session.commit()
    return count
