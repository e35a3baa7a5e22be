"""Where outbound messages go: Meta's Cloud API (`cloud`) or nowhere (`sandbox`).

Both transports take the same arguments as `build_message` and return the message id, so the
outbox does not care which one it has. Errors come out as `SendError`, already classified as
transient (retry later; see `retry_delay`) or permanent (mark the message failed and show why).
"""
import logging
import threading
import time
import uuid
from collections import deque

from services.graph import GraphError, is_transient
from services.whatsapp_payloads import build_message

log = logging.getLogger(__name__)

DEFAULT_RATE = 80.0          # messages per second per registered number (Meta's default throughput)
PAIR_RATE_CODE = 131056      # too many messages to the same user: Meta suggests retrying after 4^X s
MAX_RETRY_DELAY = 3600.0


class SendError(Exception):
    """A message Graph did not accept.

    `code` is Meta's error code (None for network errors), `title` its short text, `details`
    `error_data.details`; `transient` says whether retrying can help; `retry_after` is a wait in
    seconds Graph asked for (Retry-After), when it did.
    """

    def __init__(self, message: str, code: int | None = None, title: str | None = None, transient: bool = False,
                 retry_after: float | None = None, details: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message, self.code, self.title, self.transient = message, code, title, transient
        self.retry_after, self.details, self.status = retry_after, details, status

    @classmethod
    def from_graph(cls, error: GraphError) -> "SendError":
        code, title, details = error.code, error.title, getattr(error, "details", None)
        if error.status is None:
            message = str(error)
        else:
            parts = [f"Error {code}" if code is not None else f"HTTP {error.status}"]
            if title:
                parts.append(title)
            if details and details != title:
                parts.append(details)
            message = ": ".join(parts)
        return cls(message, code=code, title=title, transient=is_transient(error.status, code),
                   retry_after=getattr(error, "retry_after", None), details=details, status=error.status)

    def __repr__(self) -> str:
        return f"SendError({self.message!r}, code={self.code}, transient={self.transient})"


def retry_delay(error: SendError, attempt: int, base: float = 1.0, cap: float = MAX_RETRY_DELAY) -> float | None:
    """Seconds to wait before retry number `attempt` (0 for the first retry); None: do not retry.

    Pair-rate errors (131056) follow Meta's advice of 4^attempt seconds; other transient errors
    back off exponentially from `base`; a Retry-After from Graph is a floor.
    """
    if not error.transient:
        return None
    attempt = max(int(attempt), 0)
    if error.code == PAIR_RATE_CODE:
        delay = 4.0 ** attempt
    else:
        delay = base * 2.0 ** attempt
    if error.retry_after:
        delay = max(delay, error.retry_after)
    return min(delay, cap)


class Throttle:
    """Thread-safe token bucket: at most `rate` acquisitions per second, `burst` at once.

    Implemented as a virtual schedule (GCRA): each caller reserves the next free slot under the
    lock and sleeps outside it, so waiting threads do not block each other and go in order.
    The default burst of 1 spreads messages evenly, never exceeding the rate in any window.
    """

    def __init__(self, rate_per_second: float = DEFAULT_RATE, burst: int = 1, clock=time.monotonic, sleep=time.sleep):
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate, self.burst = float(rate_per_second), int(burst)
        self.interval = 1.0 / self.rate
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0     # theoretical arrival time of the next acquisition

    def reserve(self) -> float:
        """Claim a slot; return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(self._next, now)
            wait = max(0.0, start - (self.burst - 1) * self.interval - now)
            self._next = start + self.interval
            return wait

    def acquire(self) -> float:
        """Block until a slot is free; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class CloudTransport:
    """Sends through `POST /{version}/{phone_number_id}/messages` with the bearer token."""

    name = "cloud"

    def __init__(self, graph_client, phone_number_id: str, rate_per_second: float = DEFAULT_RATE,
                 throttle: Throttle | None = None):
        if not phone_number_id:
            raise ValueError("CloudTransport necesita PHONE_NUMBER_ID")
        self.graph, self.phone_number_id = graph_client, str(phone_number_id)
        self.throttle = throttle or Throttle(rate_per_second)

    @property
    def path(self) -> str:
        return f"{self.phone_number_id}/messages"

    def _post(self, payload: dict) -> dict:
        self.throttle.acquire()
        try:
            return self.graph.request("POST", self.path, json=payload)
        except GraphError as error:
            send_error = SendError.from_graph(error)
            log.warning("envío rechazado (%s): %s", "transitorio" if send_error.transient else "permanente",
                        send_error.message)
            raise send_error from error

    def send(self, to: str, kind: str, text: str | None, content: dict | None, reply_to: str | None = None) -> str:
        """Send one message; return its wamid. Raises PayloadError before sending, SendError after."""
        payload = build_message(to, kind, text, content or {}, reply_to)
        answer = self._post(payload)
        try:
            wamid = answer["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            wamid = None
        if not wamid:
            raise SendError(f"respuesta de Graph sin id de mensaje: {str(answer)[:200]}", transient=False)
        return wamid

    def mark_read(self, wamid: str, typing: bool = False) -> bool:
        """Blue ticks for a received message (and a typing indicator if `typing`)."""
        payload = build_message("", "typing" if typing else "read", None, {"message_id": wamid})
        answer = self._post(payload)
        return bool(answer.get("success", True)) if isinstance(answer, dict) else True


class SandboxTransport:
    """Delivers nothing: validates the payload and returns a made-up id.

    The simulator reads outbound messages from the database, so no network is needed. The last
    payloads are kept in `sent` (bounded) for inspection.
    """

    name = "sandbox"

    def __init__(self, keep: int = 200):
        self.sent = deque(maxlen=keep)
        self.read = deque(maxlen=keep)
        self._lock = threading.Lock()

    def send(self, to: str, kind: str, text: str | None, content: dict | None, reply_to: str | None = None) -> str:
        payload = build_message(to, kind, text, content or {}, reply_to)
        wamid = f"sandbox.{uuid.uuid4().hex}"
        with self._lock:
            self.sent.append((wamid, payload))
        return wamid

    def mark_read(self, wamid: str, typing: bool = False) -> bool:
        build_message("", "typing" if typing else "read", None, {"message_id": wamid})
        with self._lock:
            self.read.append(wamid)
        return True


def make_transport(config: dict, graph_client=None):
    """The transport named by `WHATSAPP_TRANSPORT` (`cloud` needs a GraphClient and PHONE_NUMBER_ID)."""
    if config.get("WHATSAPP_TRANSPORT") == "cloud":
        return CloudTransport(graph_client, config.get("PHONE_NUMBER_ID"),
                              float(config.get("WHATSAPP_RATE_PER_SECOND") or DEFAULT_RATE))
    return SandboxTransport()
