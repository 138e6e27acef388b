"""Webhook verification: the shared vectors of sdk/cases.json (computed with
openssl) and the seed's own snippet on random inputs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import unittest

from agentkeys import verify_standard_webhook, verify_webhook

with open(os.path.join(os.path.dirname(__file__), "..", "..", "cases.json"), encoding="utf-8") as f:
    WEBHOOKS = json.load(f)["webhooks"]


def seed_verify_webhook(raw_body: bytes, signature: str, secret: str) -> bool:
    """The seed's snippet, verbatim."""
    expected = hmac.new(
        secret.encode("utf-8"), raw_body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(signature, expected)


class SeedSignature(unittest.TestCase):
    def test_vectors(self) -> None:
        for v in WEBHOOKS["seed"]:
            with self.subTest(v["name"]):
                self.assertIs(verify_webhook(v["body"].encode(), v["signature"], v["secret"]), v["valid"])
                self.assertIs(verify_webhook(v["body"], v["signature"], v["secret"]), v["valid"])
                if v["name"] != "upper-case hex":  # the seed's Python compares strings; hex case is ours (and the TS snippet's)
                    self.assertIs(seed_verify_webhook(v["body"].encode(), v["signature"], v["secret"]), v["valid"])

    def test_agrees_with_the_seed_snippet(self) -> None:
        for i in range(50):
            body = secrets.token_bytes(i * 7) + "é€".encode()
            secret = secrets.token_hex(16)
            sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            self.assertTrue(verify_webhook(body, sig, secret))
            self.assertTrue(seed_verify_webhook(body, sig, secret))
            self.assertFalse(verify_webhook(body + b" ", sig, secret))
            self.assertFalse(verify_webhook(body, sig, secret + "x"))
        self.assertFalse(verify_webhook(b"{}", None, "s"))  # type: ignore[arg-type]
        self.assertFalse(verify_webhook(b"{}", "00" * 32, ""))


class StandardWebhooks(unittest.TestCase):
    def test_vectors(self) -> None:
        for v in WEBHOOKS["standard"]:
            with self.subTest(v["name"]):
                headers = {"webhook-id": v["id"], "webhook-timestamp": v["timestamp"], "webhook-signature": v["signature"]}
                kw = {"tolerance": v["toleranceSeconds"]} if "toleranceSeconds" in v else {}
                self.assertIs(verify_standard_webhook(v["body"].encode(), headers, v["secret"], now=v["now"], **kw), v["valid"])
                upper = {k.title(): x for k, x in headers.items()}
                self.assertIs(verify_standard_webhook(v["body"], upper, v["secret"], now=v["now"], **kw), v["valid"])

    def test_now_by_default(self) -> None:
        key = secrets.token_bytes(32)
        secret = "whsec_" + base64.b64encode(key).decode()
        body = b'{"event":"credential.expiring"}'
        for age, ok in ((0, True), (240, True), (400, False), (-400, False)):
            ts = str(int(time.time()) - age)
            sig = base64.b64encode(hmac.new(key, f"msg_1.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
            h = {"webhook-id": "msg_1", "webhook-timestamp": ts, "webhook-signature": "v1," + sig}
            self.assertIs(verify_standard_webhook(body, h, secret), ok, age)
        self.assertFalse(verify_standard_webhook(body, h, "whsec_not base64!"))


if __name__ == "__main__":
    unittest.main()
