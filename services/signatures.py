"""Checking that a webhook really comes from Meta (or Twilio)."""
import base64
import hashlib
import hmac


def valid_meta_signature(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` must be `sha256=` + hex HMAC-SHA256 of the raw body."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256="):].strip().lower())


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(token: str, url: str, params: dict[str, list[str]]) -> str:
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()
