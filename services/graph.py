"""The one HTTP client for Meta's Graph API."""
import logging

import requests

log = logging.getLogger(__name__)


# Meta error codes worth retrying (throttling, "temporarily unavailable", "something went wrong").
TRANSIENT_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004})
# Meta error codes that no retry fixes, whatever the HTTP status they come with.
PERMANENT_CODES = frozenset({10, 100, 190, 200, 368, 131008, 131009, 131021, 131026, 131031, 131042, 131047,
                             131051, 131052, 131053, 132000, 132001, 132005, 132007, 132012, 132015, 132016})


def is_transient(status: int | None, code: int | None) -> bool:
    """Retry or give up? No HTTP status means the request never got an answer (network, timeout)."""
    if status is None:
        return True
    if code in PERMANENT_CODES:
        return False
    if code in TRANSIENT_CODES:
        return True
    return status >= 500 or status == 429


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return max(seconds, 0.0) if seconds is not None else None


class GraphError(Exception):
    """Graph answered with an error; `code` is Meta's error code when it gave one.

    `title` is Meta's short error text (`title`, else `message`), `details` the longer
    `error_data.details` (or `error_user_msg`), `retry_after` the Retry-After header in seconds.
    """

    def __init__(self, message: str, status: int | None = None, code: int | None = None, title: str | None = None,
                 details: str | None = None, subcode: int | None = None, error_type: str | None = None,
                 fbtrace_id: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.title = status, code, title
        self.details, self.subcode, self.error_type, self.fbtrace_id = details, subcode, error_type, fbtrace_id
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return is_transient(self.status, self.code)


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class GraphClient:
    def __init__(self, base_url: str, version: str, token: str | None, phone_number_id: str | None,
                 timeout: float = 10.0):
        self.base_url, self.version, self.token, self.phone_number_id = base_url.rstrip("/"), version, token, phone_number_id
        self.timeout = timeout
        self.session = requests.Session()

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _json(self, response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            raise self._error(response, body)
        return body

    @staticmethod
    def _error(response: requests.Response, body) -> GraphError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            # Some proxies/BSPs return the inner error object without the {"error": ...} wrapper.
            error = body if isinstance(body, dict) and "code" in body else {}
        error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        details = error_data.get("details") or error.get("error_user_msg")
        title = error.get("title") or error.get("message") or error.get("error_user_title")
        return GraphError(details or title or f"HTTP {response.status_code}", status=response.status_code,
                          code=_int_or_none(error.get("code")), title=title, details=details,
                          subcode=_int_or_none(error.get("error_subcode")), error_type=error.get("type"),
                          fbtrace_id=error.get("fbtrace_id"),
                          retry_after=_retry_after(response.headers.get("Retry-After")))

    def request(self, method: str, path: str, timeout=None, **kwargs) -> dict:
        """One Graph call; `timeout` (seconds, or (connect, read)) replaces the client's own."""
        try:
            response = self.session.request(method, self.url(path), headers=self._headers(),
                                             timeout=timeout or self.timeout, **kwargs)
        except requests.RequestException as error:
            raise GraphError(f"Graph API no responde: {type(error).__name__}") from error
        return self._json(response)

    def media_info(self, media_id: str, timeout=None) -> dict:
        """`GET /{media-id}`: url, mime_type, file_size, sha256 of a media object."""
        params = {"phone_number_id": self.phone_number_id} if self.phone_number_id else None
        return self.request("GET", media_id, timeout=timeout, params=params)

    def download(self, url: str, timeout=None):
        """Stream a media URL with the bearer token; the caller closes the response. `timeout` (seconds, or
        (connect, read): the read timeout bounds each wait for more bytes) replaces the client's own."""
        try:
            response = self.session.get(url, headers=self._headers(), timeout=timeout or self.timeout, stream=True)
        except requests.RequestException as error:
            raise GraphError(f"descarga fallida: {type(error).__name__}") from error
        if response.status_code >= 400:
            response.close()
            raise GraphError(f"descarga fallida: HTTP {response.status_code}", status=response.status_code)
        return response
