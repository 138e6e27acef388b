"""The agentkeys proxy client (standard library only)."""

from __future__ import annotations

import http.client
import json as _json
import os
import re
import socket
import ssl
import urllib.parse
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Union

from ._errors import AgentKeysError, HTTPStatusError

#: Where ``agentkeys up`` listens by default.
DEFAULT_PROXY_URL = "http://127.0.0.1:8787"

#: The SDK's version; it follows the agentkeys binary's version.
VERSION = "0.1.0"

_USER_AGENT = "agentkeys-python/" + VERSION

# Headers the SDK sets itself; a caller's copies are dropped (the proxy reads
# them, the upstream never sees them).
_OWN_HEADERS = {"authorization", "x-target-url", "x-target-method", "x-credential-name", "host"}

_TOKEN_CHARS = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# A proxy error body is small; never read more than this to build a message.
_MAX_ERROR_BYTES = 64 << 10

Body = Union[None, str, bytes, bytearray, memoryview, Dict[str, Any], list, Iterable[bytes], Any]


def _env(name: str) -> Optional[str]:
    v = os.environ.get(name, "").strip()
    return v or None


def _env_token() -> Optional[str]:
    """AGENTKEYS_API_KEY, then the first AGENTKEYS_PROXY_TOKEN_* by name."""
    key = _env("AGENTKEYS_API_KEY")
    if key:
        return key
    for name in sorted(n for n in os.environ if n.startswith("AGENTKEYS_PROXY_TOKEN_")):
        v = _env(name)
        if v:
            return v
    return None


def _endpoint(raw: str) -> urllib.parse.SplitResult:
    """The proxy endpoint for a base URL: /v1/proxy added unless present."""
    s = raw.strip()
    u = urllib.parse.urlsplit(s)
    if u.scheme not in ("http", "https"):
        raise AgentKeysError("BAD_REQUEST", 0, f"proxy URL must start with http:// or https:// (got {s!r})")
    if not u.hostname:
        raise AgentKeysError("BAD_REQUEST", 0, f"proxy URL {s!r} is not a full URL such as http://127.0.0.1:8787")
    path = u.path.rstrip("/")
    if not path.endswith("/v1/proxy"):
        path += "/v1/proxy"
    return urllib.parse.SplitResult(u.scheme, u.netloc, path, "", "")


class Response:
    """The upstream's answer, whatever its status (redirects are returned,
    not followed). With ``stream=True`` the body is read as it arrives
    (iter_bytes, iter_lines); otherwise it was read in full. Close a streamed
    response (or use it as a context manager) to release the connection.
    """

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str, method: str) -> None:
        self._conn = conn
        self._resp = resp
        self._content: Optional[bytes] = None
        #: The upstream's status code.
        self.status_code: int = resp.status
        #: The upstream's reason phrase.
        self.reason: str = resp.reason
        #: The answer's headers (case-insensitive get; get_all for repeats).
        self.headers = resp.headers
        #: The target URL.
        self.url = url
        #: The target method.
        self.method = method

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status_code < 400

    @property
    def content(self) -> bytes:
        """The whole body (read at first use, then kept)."""
        if self._content is None:
            try:
                self._content = self._resp.read()
            finally:
                self.close()
        return self._content

    @property
    def encoding(self) -> str:
        """The charset of Content-Type, else utf-8."""
        return self._resp.headers.get_content_charset() or "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with its charset (invalid bytes replaced)."""
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.content, **kwargs)

    def raise_for_status(self) -> "Response":
        """Raises HTTPStatusError for a 4xx or 5xx; returns self otherwise."""
        if self.status_code >= 400:
            kind = "client" if self.status_code < 500 else "server"
            raise HTTPStatusError(f"{self.status_code} {self.reason} ({kind} error) from {self.method} {_safe_url(self.url)}", self)
        return self

    def iter_bytes(self, chunk_size: int = 65536) -> Iterator[bytes]:
        """Yields the body as it arrives: each piece is what one read gave,
        at most chunk_size bytes (so an event stream is seen event by event)."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        try:
            while True:
                b = self._resp.read1(chunk_size)
                if not b:
                    break
                yield b
        finally:
            self.close()

    def iter_lines(self) -> Iterator[str]:
        """Yields the body's lines as they arrive (without line endings),
        decoded with the response's charset — for text/event-stream."""
        buf = b""
        for b in self.iter_bytes():
            buf += b
            while True:
                i = buf.find(b"\n")
                if i < 0:
                    break
                line, buf = buf[:i], buf[i + 1:]
                yield line.rstrip(b"\r").decode(self.encoding, errors="replace")
        if buf:
            yield buf.rstrip(b"\r").decode(self.encoding, errors="replace")

    def close(self) -> None:
        """Releases the connection; the rest of a streamed body is dropped."""
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def _safe_url(url: str) -> str:
    """The URL without its query (which may hold a key the caller put there)."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, "", ""))


def _encode_body(body: Body, headers: Dict[str, str]) -> Any:
    """The body for http.client; sets Content-Type for JSON unless given."""
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        if "content-type" not in {k.lower() for k in headers}:
            headers["Content-Type"] = "application/json"
        return _json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        return body  # a file: streamed in chunks
    if hasattr(body, "__iter__"):
        return (bytes(b) if not isinstance(b, str) else b.encode("utf-8") for b in body)  # streamed, chunked
    raise TypeError("body must be a dict or list (sent as JSON), str, bytes, a file or an iterable of bytes")


class AgentKeys:
    """The agentkeys client: every call goes to the proxy's /v1/proxy, which
    checks the token, checks the target against the credential's allowlist,
    injects the credential and streams the upstream's answer back.

    token is a proxy token (pxr_…, one credential) or a workspace key
    (ak_ws_…, any credential by name); default AGENTKEYS_API_KEY, then the
    first AGENTKEYS_PROXY_TOKEN_* variable by name. proxy_url is the proxy's
    address (/v1/proxy is added unless present); default AGENTKEYS_PROXY_URL,
    then http://127.0.0.1:8787. timeout (seconds) bounds connecting and each
    wait for data, not a whole streamed answer.
    """

    def __init__(self, token: Optional[str] = None, proxy_url: Optional[str] = None, timeout: float = 60) -> None:
        tok = (token if token is not None else _env_token() or "").strip()
        if not tok:
            raise AgentKeysError(
                "BAD_REQUEST", 0,
                "missing token: pass token= (a pxr_… proxy token or an ak_ws_… workspace key) "
                "or set AGENTKEYS_API_KEY or AGENTKEYS_PROXY_TOKEN_<NAME>")
        if _CONTROL.search(tok):
            raise AgentKeysError("BAD_REQUEST", 0, "the token contains a control character: copy it again")
        self._token = tok
        self._endpoint = _endpoint(proxy_url if proxy_url is not None else _env("AGENTKEYS_PROXY_URL") or DEFAULT_PROXY_URL)
        self._timeout = timeout

    @property
    def proxy_url(self) -> str:
        """The proxy endpoint requests go to (…/v1/proxy)."""
        return urllib.parse.urlunsplit(self._endpoint)

    def __repr__(self) -> str:
        return f"AgentKeys(proxy_url={self.proxy_url!r})"  # never the token

    def proxy(self, credential: Optional[str] = None, url: Optional[str] = None, method: str = "GET",
              body: Body = None, headers: Optional[Mapping[str, str]] = None, stream: bool = False) -> Response:
        """Sends one request through the proxy with credential's secret and
        returns the upstream's answer, whatever its status. With a pxr_ token
        the credential name is ignored: the token names its credential.

        body: a dict or list is sent as JSON (Content-Type: application/json
        unless headers set one); str, bytes, a file or an iterable of bytes
        pass through (files and iterables are streamed). stream=True returns
        before the body is read (iter_bytes, iter_lines).

        Raises AgentKeysError when the proxy refuses or fails the request
        itself, or cannot be reached.
        """
        if not url:
            raise AgentKeysError("BAD_REQUEST", 0, "missing url: say which URL to call")
        target = str(url)
        m = (method or "GET").upper()
        hdrs: Dict[str, str] = {}
        for k, v in (headers or {}).items():
            if k.lower() in _OWN_HEADERS:
                continue
            if _CONTROL.search(str(v).replace("\t", "")):
                raise AgentKeysError("BAD_REQUEST", 0, f"request header {k} contains a line break or control character")
            hdrs[k] = str(v)
        if "user-agent" not in {k.lower() for k in hdrs}:
            hdrs["User-Agent"] = _USER_AGENT
        for what, v in (("target URL", target), ("method", m)):
            if _CONTROL.search(v):
                raise AgentKeysError("BAD_REQUEST", 0, f"the {what} contains a control character")
        hdrs["Authorization"] = "Bearer " + self._token
        hdrs["X-Target-Url"] = target
        hdrs["X-Target-Method"] = m
        if self._token.startswith("ak_ws_"):
            name = (credential or "").strip()
            if not name:
                raise AgentKeysError("BAD_REQUEST", 0, "missing credential name: with a workspace key (ak_ws_…) say which credential to use")
            if _CONTROL.search(name):
                raise AgentKeysError("BAD_REQUEST", 0, "the credential name contains a control character")
            hdrs["X-Credential-Name"] = name
        data = _encode_body(body, hdrs)
        # The inbound method is the target's when it can be (so HEAD keeps a
        # HEAD's framing); otherwise POST, and the proxy takes the method
        # from X-Target-Method.
        inbound = m
        if not _TOKEN_CHARS.match(m) or m in ("CONNECT", "TRACE", "TRACK") or (data is not None and m in ("GET", "HEAD")):
            inbound = "POST"

        ep = self._endpoint
        host = ep.hostname or ""
        try:
            if ep.scheme == "https":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, ep.port, timeout=self._timeout, context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(host, ep.port, timeout=self._timeout)
            conn.request(inbound, ep.path, body=data, headers=hdrs)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - conn may not exist
                pass
            raise AgentKeysError("UNAVAILABLE", 0, f"cannot reach the agentkeys proxy at {ep.netloc}: {_describe(e)} "
                                 "(is `agentkeys up` running, and is AGENTKEYS_PROXY_URL right?)") from None

        code = resp.getheader("X-Agentkeys-Error")
        if code:
            try:
                raw = resp.read(_MAX_ERROR_BYTES)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                resp.close()
                conn.close()
            raise self._proxy_error(resp, code, raw)
        out = Response(conn, resp, target, m)
        if not stream:
            try:
                out.content
            except (OSError, http.client.HTTPException) as e:
                raise AgentKeysError("UNAVAILABLE", 0, f"the answer from {ep.netloc} broke off: {_describe(e)}") from e
        return out

    def _proxy_error(self, resp: http.client.HTTPResponse, header_code: str, raw: bytes) -> AgentKeysError:
        code, message = header_code, ""
        try:
            o = _json.loads(raw)
            if isinstance(o, dict):
                if isinstance(o.get("error"), str):
                    message = o["error"]
                if isinstance(o.get("code"), str) and o["code"]:
                    code = o["code"]
        except ValueError:
            pass
        if not message:
            message = f"the agentkeys proxy answered {resp.status} {code}"
        message = message.replace(self._token, "REDACTED")
        return AgentKeysError(code, resp.status, message, resp.getheader("X-Agentkeys-Request-Id") or "")

    def for_credential(self, name: str) -> "ScopedClient":
        """A client bound to one credential: ak.for_credential("stripe").get(url)."""
        return ScopedClient(self, name)


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(e, ssl.SSLError):
        return "TLS failed"
    if isinstance(e, socket.gaierror):
        return "host name not found"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    return "request failed"


class ScopedClient:
    """A client bound to one credential (AgentKeys.for_credential)."""

    def __init__(self, ak: AgentKeys, credential: str) -> None:
        self._ak = ak
        self.credential = credential

    def request(self, method: str, url: str, body: Body = None, headers: Optional[Mapping[str, str]] = None,
                stream: bool = False) -> Response:
        """Any method; see AgentKeys.proxy."""
        return self._ak.proxy(credential=self.credential, url=url, method=method, body=body, headers=headers, stream=stream)

    def get(self, url: str, headers: Optional[Mapping[str, str]] = None, stream: bool = False) -> Response:
        return self.request("GET", url, headers=headers, stream=stream)

    def delete(self, url: str, headers: Optional[Mapping[str, str]] = None, stream: bool = False) -> Response:
        return self.request("DELETE", url, headers=headers, stream=stream)

    def post(self, url: str, body: Body = None, headers: Optional[Mapping[str, str]] = None, stream: bool = False) -> Response:
        return self.request("POST", url, body=body, headers=headers, stream=stream)

    def put(self, url: str, body: Body = None, headers: Optional[Mapping[str, str]] = None, stream: bool = False) -> Response:
        return self.request("PUT", url, body=body, headers=headers, stream=stream)

    def patch(self, url: str, body: Body = None, headers: Optional[Mapping[str, str]] = None, stream: bool = False) -> Response:
        return self.request("PATCH", url, body=body, headers=headers, stream=stream)
