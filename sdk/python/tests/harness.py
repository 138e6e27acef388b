"""Test harness: a real agentkeys binary (`agentkeys up`, `agentkeys serve`),
an upstream on loopback that behaves as sdk/cases.json describes, and the
shared case runner."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

from agentkeys import AgentKeys, AgentKeysError

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_ROOT = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(SDK_ROOT))
with open(os.path.join(REPO_ROOT, "sdk", "cases.json"), encoding="utf-8") as f:
    CONTRACT = json.load(f)

#: Secrets of the test credentials (the upstream sees them, the SDK never does).
SECRETS = {
    "echo": "sk_echo_" + secrets.token_hex(8),
    "resend": "re_test_" + secrets.token_hex(8),
    "stripe": "sk_test_" + secrets.token_hex(8),
}

_cleanups: List[Callable[[], None]] = []

# Straight to loopback, whatever HTTP(S)_PROXY the environment sets.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cleanup() -> None:
    """Runs every cleanup registered so far (processes, servers, temp dirs), last first."""
    while _cleanups:
        _cleanups.pop()()


def temp_dir(prefix: str) -> str:
    d = tempfile.mkdtemp(prefix=prefix)
    _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def agentkeys_binary() -> str:
    """AGENTKEYS_BIN, or the binary built from this repository into a temp dir."""
    if os.environ.get("AGENTKEYS_BIN"):
        return os.environ["AGENTKEYS_BIN"]
    b = os.path.join(temp_dir("agentkeys-sdk-bin-"), "agentkeys")
    subprocess.run(["go", "build", "-o", b, "./cmd/agentkeys"], cwd=REPO_ROOT, check=True)
    return b


def start_process(args: List[str], env: Dict[str, str], pattern: str) -> str:
    """Starts a process and returns group 1 of the first stdout line matching pattern."""
    # stderr goes to a file: a pipe nobody reads would block the process once full.
    errf = tempfile.NamedTemporaryFile(prefix="agentkeys-sdk-stderr-", delete=False)
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=errf, text=True)

    def stop() -> None:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        errf.close()
        if os.environ.get("AGENTKEYS_SDK_KEEP_LOGS"):
            print(f"{args[1]} stderr kept in {errf.name}")
        else:
            os.unlink(errf.name)

    _cleanups.append(stop)
    lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def read() -> None:
        for line in p.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    rx = re.compile(pattern)
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            raise RuntimeError(f"{args[1]} did not start in 20 s")
        if line is None:
            with open(errf.name, encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"{args[1]} exited {p.wait()}: {f.read()}")
        m = rx.search(line)
        if m:
            # Keep draining stdout so the process never blocks on a full pipe.
            return m.group(1)


def dead_port() -> str:
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


class Upstream:
    """The upstream of sdk/cases.json: /status/N, /sse?id=X with /release?id=X,
    anything else echoes. Every request is kept in log."""

    def __init__(self) -> None:
        self.log: List[Dict[str, Any]] = []
        self._released: Dict[str, int] = {}
        self._cond = threading.Condition()
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, body: bytes, headers: Dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def handle_one(self) -> None:
                body = self._body()
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                up.log.append({"method": self.command, "path": self.path,
                               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode("utf-8", "replace")})
                if u.path == "/release":
                    up.release(q["id"][0])
                    return self._send(200, b"ok", {})
                m = re.match(r"^/status/(\d{3})$", u.path)
                if m:
                    code = int(m.group(1))
                    h = {"Content-Type": "application/json"}
                    if 300 <= code < 400:
                        h["Location"] = "/echo"
                    return self._send(code, json.dumps({"status": code}).encode(), h)
                if u.path == "/sse":
                    sid = q["id"][0]
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self._chunk(b"data: one\n\n")
                    for n, ev in ((1, b"data: two\n\n"), (2, b"data: three\n\n")):
                        if not up.wait_for(sid, n):
                            self._chunk(b"data: timeout\n\n")
                            break
                        self._chunk(ev)
                    self.wfile.write(b"0\r\n\r\n")
                    return
                headers: Dict[str, str] = {}
                for k in self.headers.keys():
                    headers[k.lower()] = ", ".join(self.headers.get_all(k) or [])
                echo = {"method": self.command, "path": self.path, "headers": headers,
                        "body": body.decode("utf-8", "replace"), "bodyBase64": base64.b64encode(body).decode()}
                return self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host_port = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = "http://" + self.host_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

        def stop() -> None:
            self.server.shutdown()
            self.server.server_close()

        _cleanups.append(stop)

    def release(self, sid: str) -> None:
        with self._cond:
            self._released[sid] = self._released.get(sid, 0) + 1
            self._cond.notify_all()

    def wait_for(self, sid: str, need: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._released.get(sid, 0) >= need, timeout=5)


class Env:
    def __init__(self, name: str, proxy_url: str, key: str, tokens: Dict[str, str]) -> None:
        self.name, self.proxy_url, self.key, self.tokens = name, proxy_url, key, tokens


def start_local(binary: str, upstream: Upstream, dead: str) -> Env:
    """A local vault in a temp AGENTKEYS_HOME with credentials echo, resend and
    stripe (allowlisted for the upstream and the dead port), an agent with
    pxr_ tokens for echo and resend, and `agentkeys up` on a free port."""
    home = temp_dir("agentkeys-sdk-home-")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "AGENTKEYS_HOME": home,
           "AGENTKEYS_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}

    def run(*args: str) -> str:
        return subprocess.run([binary, *args], env=env, check=True, capture_output=True, text=True).stdout

    key = json.loads(run("init", "--json"))["workspaceKey"]
    for name, value in SECRETS.items():
        run("credentials", "add", "--name", name, "--type", "API_KEY", "--value", value,
            "--allow-host", upstream.host_port, "--allow-host", dead,
            # The upstream echoes the injected key: opt out of echo redaction.
            "--raw-responses")
    tokens = {
        "echo": run("agents", "create", "--name", "bot", "--credential", "echo").strip(),
        "resend": run("agents", "assign", "bot", "--credential", "resend").strip(),
    }
    url = start_process([binary, "up", "--listen", "127.0.0.1:0"], env, r"^export AGENTKEYS_PROXY_URL=(\S+)")
    return Env("agentkeys up", url, key, tokens)


def start_serve(binary: str, upstream: Upstream, dead: str) -> Env:
    """`agentkeys serve` on SQLite in a temp dir (loopback targets allowed), a
    workspace signed up over the REST API, and the same credentials, agent
    and tokens as start_local, made through the REST API."""
    home = temp_dir("agentkeys-sdk-serve-")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "AGENTKEYS_HOME": home,
           "AGENTKEYS_SERVER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    base = start_process([binary, "serve", "--listen", "127.0.0.1:0", "--allow-loopback-targets",
                          "--data-dir", os.path.join(home, "data")], env, r"agentkeys server listening on (\S+)")

    def api(method: str, path: str, body: Any, key: Optional[str] = None) -> Any:
        req = urllib.request.Request(base + "/api/v1" + path, method=method, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **({"Authorization": "Bearer " + key} if key else {})})
        with _direct.open(req, timeout=20) as r:
            return json.load(r)

    key = api("POST", "/signup", {"email": "owner@example.com", "password": "correct horse battery", "workspace": "SDK"})["apiKey"]
    ids = {}
    for name, value in SECRETS.items():
        ids[name] = api("POST", "/credentials", {"name": name, "type": "API_KEY", "value": value,
                                                 "allowedHosts": [upstream.host_port, dead],
                                                 "rawResponses": True}, key)["id"]
    agent = api("POST", "/agents", {"name": "bot"}, key)
    tokens = {n: api("POST", f"/agents/{agent['id']}/credentials", {"credentialId": ids[n]}, key)["proxyToken"]
              for n in ("echo", "resend")}
    return Env("agentkeys serve", base, key, tokens)


def make_body(b: Optional[Dict[str, Any]], headers: Dict[str, str]) -> Any:
    """The body of a case in this SDK's terms."""
    if not b:
        return None
    if "json" in b:
        return b["json"]
    if "text" in b:
        return b["text"]
    if "base64" in b:
        return base64.b64decode(b["base64"])
    if "chunks" in b:
        return (c.encode() for c in b["chunks"])
    if "form" in b:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urllib.parse.urlencode([tuple(p) for p in b["form"]])
    raise ValueError(f"unknown body kind {list(b)}")


def auth_modes(c: Dict[str, Any]) -> List[str]:
    return ["token", "key"] if c.get("auth", "both") == "both" else [c["auth"]]


_sse = [0]


def run_case(t: unittest.TestCase, env: Env, upstream: Upstream, dead: str, c: Dict[str, Any], auth: str) -> None:
    """Runs one case of sdk/cases.json with one auth mode against env."""
    token = {"token": env.tokens["echo"], "key": env.key, "bad-token": "pxr_" + "A" * 43}[auth]
    credential = c.get("credential") or ("echo" if auth == "key" else "ignored")
    ak = AgentKeys(token=token, proxy_url=env.proxy_url)
    req, want = c["request"], c["expect"]
    url = req["url"].replace("$DEAD", "http://" + dead) if "url" in req else upstream.url + req["path"]
    _sse[0] += 1
    sid = f"py-sse-{_sse[0]}"
    if "events" in want:
        url += "?id=" + sid
    headers = dict(req.get("headers") or {})
    body = make_body(req.get("body"), headers)
    try:
        res = ak.proxy(credential=credential, url=url, method=req.get("method", "GET"), body=body,
                       headers=headers, stream="events" in want)
    except AgentKeysError as e:
        if "error" not in want:
            raise
        t.assertEqual(e.code, want["error"]["code"])
        t.assertEqual(e.status, want["error"]["status"])
        t.assertRegex(e.request_id, r"^req_")
        t.assertTrue(e.message)
        t.assertNotIn(token, str(e))
        return
    t.assertNotIn("error", want, f"got a response {res.status_code}")
    t.assertEqual(res.status_code, want["status"])
    for k, v in (want.get("headers") or {}).items():
        t.assertEqual(res.headers.get(k), v, k)
    if "json" in want:
        t.assertEqual(res.json(), want["json"])
    if "echo" in want:
        echo, e = res.json(), want["echo"]
        if "method" in e:
            t.assertEqual(echo["method"], e["method"])
        if "path" in e:
            t.assertEqual(echo["path"], e["path"])
        if "body" in e:
            t.assertEqual(echo["body"], e["body"])
        if "bodyBase64" in e:
            t.assertEqual(echo["bodyBase64"], e["bodyBase64"])
        if "bodyContains" in e:
            t.assertIn(e["bodyContains"], echo["body"])
        if "json" in e:
            t.assertEqual(json.loads(echo["body"]), e["json"])
        if "contentTypePrefix" in e:
            t.assertTrue(echo["headers"].get("content-type", "").startswith(e["contentTypePrefix"]), echo["headers"].get("content-type"))
        for k, v in (e.get("headers") or {}).items():
            t.assertEqual(echo["headers"].get(k), v.replace("$SECRET", SECRETS["echo"]), k)
        for k in e.get("absentHeaders") or []:
            t.assertNotIn(k, echo["headers"])
    if "events" in want:
        events = []
        with res:
            for line in res.iter_lines():
                if not line.startswith("data: "):
                    continue
                ev = line[len("data: "):]
                events.append(ev)
                # Only now may the upstream send the next event: a buffering
                # SDK would see "timeout" instead.
                if ev not in ("three", "timeout"):
                    _direct.open(f"{upstream.url}/release?id={sid}", timeout=5).read()
        t.assertEqual(events, want["events"])
    res.close()
