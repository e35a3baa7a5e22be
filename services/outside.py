"""How many calls this process makes at once to each outside service (Graph media, Twilio media, the
forwarding receiver, Gemini): at most OUTSIDE_JOB_THREADS each, so that no caller, whatever its pool,
opens more connections to a slow service than the outside work may use."""
import threading
from contextlib import contextmanager

from flask import current_app

from services.jobs import TransientJobError

SERVICES = ("graph", "twilio", "forwarding", "gemini")


class OutsideBusy(TransientJobError):
    """Every allowed call to the service is in progress and none ended in time; the job tries again later."""


class CallLimit:
    """A bounded number of calls at once to one service; a caller waits at most `wait` seconds for a turn."""

    def __init__(self, service: str, limit: int, wait: float):
        self.service, self.limit, self.wait = service, limit, wait
        self._turns = threading.BoundedSemaphore(limit)

    @contextmanager
    def turn(self):
        """Hold one of the service's calls for the duration of the block; OutsideBusy when none came free."""
        if not self._turns.acquire(timeout=self.wait):
            raise OutsideBusy(f"{self.service}: ya hay {self.limit} llamadas en curso; se intentará más tarde")
        try:
            yield
        finally:
            self._turns.release()


class CallLimits:
    """One CallLimit per outside service, built once per app (services.adapters)."""

    def __init__(self, limit: int, waits: dict[str, float]):
        self.limits = {service: CallLimit(service, limit, waits[service]) for service in SERVICES}

    def turn(self, service: str):
        return self.limits[service].turn()


def turn(service: str):
    """This app's turn for one call to `service` (a context manager), see CallLimit.turn."""
    return current_app.extensions["outside_calls"].turn(service)
