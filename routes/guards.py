"""Who may see a page: decorators shared by the blueprints."""
from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def admin_required(view):
    """Signed in and an administrator; agents get 403."""
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description="Solo los administradores pueden entrar aquí.")
        return view(*args, **kwargs)
    return wrapper
