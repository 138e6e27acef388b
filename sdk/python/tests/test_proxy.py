"""The SDK against a real `agentkeys up` and a real `agentkeys serve`: the
shared cases of sdk/cases.json, the scoped client, environment defaults,
refusals without a request, and the seed's Python examples as programs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unittest
from typing import Any, Dict, Optional
from unittest import mock

import harness as h
from agentkeys import AgentKeys, AgentKeysError, HTTPStatusError

upstream: h.Upstream
dead: str
envs: Dict[str, h.Env] = {}


def setUpModule() -> None:
    global upstream, dead
    try:
        binary = h.agentkeys_binary()
        upstream = h.Upstream()
        dead = h.dead_port()
        envs["local"] = h.start_local(binary, upstream, dead)
        envs["serve"] = h.start_serve(binary, upstream, dead)
    except BaseException:
        h.cleanup()
        raise


def tearDownModule() -> None:
    h.cleanup()


def _case_test(env_name: str, case: Dict[str, Any], auth: str):
    def test(self: unittest.TestCase) -> None:
        h.run_case(self, envs[env_name], upstream, dead, case, auth)
    return test


class CasesLocal(unittest.TestCase):
    """cases.json through agentkeys up."""


class CasesServe(unittest.TestCase):
    """cases.json through agentkeys serve."""


for _cls, _env in ((CasesLocal, "local"), (CasesServe, "serve")):
    for _i, _c in enumerate(h.CONTRACT["cases"]):
        if "sdks" in _c and "python" not in _c["sdks"]:
            continue
        for _auth in h.auth_modes(_c):
            _name = "test_%02d_%s_%s" % (_i, re.sub(r"\W+", "_", _c["name"]).strip("_").lower(), _auth)
            setattr(_cls, _name, _case_test(_env, _c, _auth))


class ScopedClient(unittest.TestCase):
    def test_methods_and_bodies(self) -> None:
        echo = AgentKeys(token=envs["local"].key, proxy_url=envs["local"].proxy_url).for_credential("echo")
        url = upstream.url + "/a"
        for res, method, body in (
            (echo.get(url), "GET", ""),
            (echo.delete(url), "DELETE", ""),
            (echo.post(url, body={"x": 1}), "POST", '{"x":1}'),
            (echo.put(url, body=[1]), "PUT", "[1]"),
            (echo.patch(url, body="raw", headers={"Content-Type": "text/plain"}), "PATCH", "raw"),
            (echo.request("OPTIONS", url), "OPTIONS", ""),
        ):
            self.assertEqual(res.status_code, 200)
            e = res.json()
            self.assertEqual((e["method"], e["body"]), (method, body))
            self.assertEqual(e["headers"]["authorization"], "Bearer " + h.SECRETS["echo"])

    def test_response(self) -> None:
        ak = AgentKeys(token=envs["local"].tokens["echo"], proxy_url=envs["local"].proxy_url)
        res = ak.proxy(url=upstream.url + "/status/418")
        self.assertFalse(res.ok)
        self.assertEqual(res.headers["content-type"], "application/json")
        self.assertEqual(res.text, '{"status": 418}')
        self.assertEqual(b"".join(res.iter_bytes()), b'{"status": 418}')
        with self.assertRaises(HTTPStatusError) as cm:
            res.raise_for_status()
        self.assertEqual(cm.exception.status_code, 418)
        ok = ak.proxy(url=upstream.url + "/fine?secret-query=1")
        self.assertIs(ok.raise_for_status(), ok)
        self.assertNotIn(envs["local"].tokens["echo"], repr(ak))


class DefaultsAndRefusals(unittest.TestCase):
    def _clean_env(self, **extra: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTKEYS_")}
        env.update(extra)
        return mock.patch.dict(os.environ, env, clear=True)

    def test_environment_defaults(self) -> None:
        local = envs["local"]
        with self._clean_env(AGENTKEYS_PROXY_TOKEN_ECHO=local.tokens["echo"], AGENTKEYS_PROXY_TOKEN_ZZZ="pxr_not_first",
                             AGENTKEYS_PROXY_URL=local.proxy_url):
            ak = AgentKeys()
            self.assertEqual(ak.proxy_url, local.proxy_url + "/v1/proxy")
            self.assertEqual(ak.proxy(url=upstream.url + "/env").json()["headers"]["authorization"], "Bearer " + h.SECRETS["echo"])
        with self._clean_env(AGENTKEYS_API_KEY=local.key, AGENTKEYS_PROXY_TOKEN_ECHO=local.tokens["echo"],
                             AGENTKEYS_PROXY_URL=local.proxy_url):
            res = AgentKeys().proxy(credential="resend", url=upstream.url + "/env")
            self.assertEqual(res.json()["headers"]["authorization"], "Bearer " + h.SECRETS["resend"])
        with self._clean_env(AGENTKEYS_API_KEY="ak_ws_x"):
            self.assertEqual(AgentKeys().proxy_url, "http://127.0.0.1:8787/v1/proxy")
            self.assertEqual(AgentKeys(proxy_url="https://p.example/base/v1/proxy/").proxy_url, "https://p.example/base/v1/proxy")

    def test_refused_before_any_request(self) -> None:
        with self._clean_env():
            with self.assertRaises(AgentKeysError) as cm:
                AgentKeys()
            self.assertEqual(cm.exception.code, "BAD_REQUEST")
            self.assertIn("AGENTKEYS_API_KEY", cm.exception.message)
        with self.assertRaisesRegex(AgentKeysError, "http:// or https://"):
            AgentKeys(token="pxr_x", proxy_url="ftp://x")
        before = len(upstream.log)
        ak = AgentKeys(token=envs["local"].key, proxy_url=envs["local"].proxy_url)
        with self.assertRaisesRegex(AgentKeysError, "credential name"):
            ak.proxy(credential="", url=upstream.url + "/x")
        with self.assertRaises(TypeError):
            ak.proxy(credential="echo", url=upstream.url + "/x", method="POST", body=42)
        with self.assertRaisesRegex(AgentKeysError, "line break"):
            ak.proxy(credential="echo", url=upstream.url + "/x", headers={"X-A": "a\r\nX-B: b"})
        with self.assertRaisesRegex(AgentKeysError, "missing url"):
            ak.proxy(credential="echo")
        self.assertEqual(len(upstream.log), before)

    def test_proxy_not_running(self) -> None:
        ak = AgentKeys(token=envs["local"].tokens["echo"], proxy_url="http://" + dead)
        with self.assertRaises(AgentKeysError) as cm:
            ak.proxy(url=upstream.url + "/x")
        self.assertEqual((cm.exception.code, cm.exception.status), ("UNAVAILABLE", 0))
        self.assertIn("connection refused", cm.exception.message)


class SeedExamples(unittest.TestCase):
    """The seed's Python examples, run as programs; only the addresses and the
    placeholder tokens are replaced."""

    def _run(self, file: str, env: h.Env) -> "tuple[str, list]":
        with open(os.path.join(h.SDK_ROOT, "examples", file), encoding="utf-8") as f:
            src = f.read()
        for old, new in (("https://api.resend.com", upstream.url), ("https://api.stripe.com", upstream.url),
                         ("https://proxy.agentkeys.io", env.proxy_url), ("ak_ws_your_key...", env.key),
                         ("pxr_resend_abc123...", env.tokens["resend"])):
            src = src.replace(old, new)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, file)
            with open(path, "w", encoding="utf-8") as f:
                f.write(src)
            start = len(upstream.log)
            out = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=30, check=True,
                                 env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.path.join(h.SDK_ROOT, "src"),
                                      "AGENTKEYS_PROXY_URL": env.proxy_url})
        return out.stdout, upstream.log[start:]

    def test_examples(self) -> None:
        want_hello = {"from": "hi@example.com", "to": "user@example.com", "subject": "Hello", "text": "Sent via AgentKeys"}
        for name, env in envs.items():
            with self.subTest(env=name, example="proxy by name"):
                out, seen = self._run("proxy_by_name.py", env)
                self.assertEqual([(r["method"], r["path"], r["headers"]["authorization"]) for r in seen],
                                 [("POST", "/emails", "Bearer " + h.SECRETS["resend"])])
                self.assertEqual(h.json.loads(seen[0]["body"]), want_hello)
                self.assertIn("Sent via AgentKeys", out)
            with self.subTest(env=name, example="scoped clients"):
                _, seen = self._run("scoped_client.py", env)
                self.assertEqual([(r["method"], r["path"], r["headers"]["authorization"]) for r in seen],
                                 [("GET", "/v1/balance", "Bearer " + h.SECRETS["stripe"]),
                                  ("POST", "/emails", "Bearer " + h.SECRETS["resend"])])
                self.assertEqual(h.json.loads(seen[1]["body"]),
                                 {"from": "hi@example.com", "to": "user@example.com", "subject": "Test", "text": "Hello"})
            with self.subTest(env=name, example="proxy token"):
                out, seen = self._run("proxy_token.py", env)
                self.assertEqual([r["headers"]["authorization"] for r in seen], ["Bearer " + h.SECRETS["resend"]])
                self.assertIn("Sent via AgentKeys", out)


if __name__ == "__main__":
    unittest.main()
