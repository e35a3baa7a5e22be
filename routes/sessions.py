"""Cookie sessions for the people who sign in; none for the machines that post to the webhooks."""
from flask.sessions import SecureCookieSessionInterface


class PeopleSessions(SecureCookieSessionInterface):
    """Meta and Twilio send no session cookie and keep none: their requests get Flask's null session,
    which spares every webhook the cookie signer and the session's after-request work."""

    def __init__(self, machine_prefixes: tuple[str, ...]):
        self.machine_prefixes = machine_prefixes

    def open_session(self, app, request):
        if request.path.startswith(self.machine_prefixes):
            return None  # Flask puts a null session in its place, which is never saved
        return super().open_session(app, request)
