"""Errors of the agentkeys SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._client import Response


class AgentKeysError(Exception):
    """An answer the agentkeys proxy made itself (it carries the
    X-Agentkeys-Error header), or a failure to reach the proxy at all.

    An upstream API's own 4xx/5xx is never an AgentKeysError: it is a normal
    Response (see Response.raise_for_status).

    code is the proxy's code: UNAUTHORIZED, BAD_REQUEST, NOT_FOUND,
    DESTINATION_NOT_ALLOWED, PAYLOAD_TOO_LARGE, RATE_LIMITED,
    UPSTREAM_UNREACHABLE, UPSTREAM_TIMEOUT, UNAVAILABLE or INTERNAL;
    UNAVAILABLE with status 0 means the proxy could not be reached. status is
    the HTTP status of the proxy's answer (0 when there was none), request_id
    its X-Agentkeys-Request-Id ("" when none).
    """

    def __init__(self, code: str, status: int, message: str, request_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"AgentKeysError(code={self.code!r}, status={self.status}, message={self.message!r}, request_id={self.request_id!r})"


class HTTPStatusError(Exception):
    """Raised by Response.raise_for_status for an upstream 4xx or 5xx."""

    def __init__(self, message: str, response: "Response") -> None:
        super().__init__(message)
        self.response = response
        self.status_code = response.status_code
