#!/usr/bin/env python3
"""Protect legacy password hashes in bulk, outside the request cycle.

The original system stored passwords as bare SHA-256 hex digests. This script wraps each of them in
a Werkzeug hash (`sha256$<werkzeug hash of the digest>`) without knowing the password; the user's
next login replaces the wrapped hash with a plain Werkzeug hash of the password.

Run from the repository root, with the same settings (.env / environment) as the app:

    .venv/bin/python scripts/rehash_passwords.py
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(app=None) -> int:
    """Wrap every bare SHA-256 hash in the database of `app` (built from the environment if None)."""
    if app is None:
        from app import create_app
        app = create_app()
    from services.auth import rehash_legacy_passwords

    with app.app_context():
        count = rehash_legacy_passwords()
    print(f"{count} hash(es) SHA-256 heredados protegidos con Werkzeug "
          f"({count} legacy SHA-256 password hash(es) wrapped)")
    return count


if __name__ == "__main__":
    main()
