"""A webhook receiver for the server's tests: a process of its own on
loopback that verifies both signatures of every delivery, records what it
got, and can be told to fail.

Usage: python3 webhook_receiver.py PORTFILE
It listens on 127.0.0.1 (a free port, written to PORTFILE) and answers:
  POST /_control  {"secret": "whsec_...", "fail": N, "mode": "ok"|"fail"|"hang"}
                  fail: answer 500 to the next N deliveries; mode fail:
                  always 500; hang: wait 15 s before answering.
  GET  /_log      every delivery received, as a JSON list.
  POST anything else: a delivery.
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# The seed's Python verification snippet, unchanged.
def verify_webhook(raw_body: bytes, signature: str, secret: str) -> bool:
    expected = hmac.new(
        secret.encode("utf-8"), raw_body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(signature, expected)


# Standard Webhooks: v1,<base64 HMAC-SHA256 of "id.timestamp.body">, keyed
# with the base64-decoded part of whsec_..., timestamp within 5 minutes.
def verify_standard(headers, raw_body: bytes, secret: str) -> bool:
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "")
    sigs = headers.get("webhook-signature", "")
    try:
        if abs(time.time() - int(ts)) > 300:
            return False
    except ValueError:
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + ts.encode() + b"." + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for s in sigs.split(" "):
        version, _, sig = s.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


state = {"secret": "", "fail": 0, "mode": "ok"}
log = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_log":
            with lock:
                body = json.dumps(log).encode()
            return self.answer(200, body)
        self.answer(404)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_control":
            with lock:
                state.update(json.loads(raw))
            return self.answer(204)
        with lock:
            secret, mode = state["secret"], state["mode"]
            status = 200
            if mode == "fail":
                status = 500
            elif state["fail"] > 0:
                state["fail"] -= 1
                status = 500
        sig = self.headers.get("X-AgentKeys-Signature", "")
        entry = {
            "path": self.path,
            "time": time.time(),
            "body": base64.b64encode(raw).decode(),
            "signature": sig,
            "webhookId": self.headers.get("webhook-id", ""),
            "webhookTimestamp": self.headers.get("webhook-timestamp", ""),
            "webhookSignature": self.headers.get("webhook-signature", ""),
            "attempt": self.headers.get("X-AgentKeys-Delivery-Attempt", ""),
            "seedVerified": verify_webhook(raw, sig, secret),
            "standardVerified": verify_standard(self.headers, raw, secret),
            "status": status,
        }
        if mode == "hang":
            entry["status"] = 0
        with lock:
            log.append(entry)
        if mode == "hang":
            time.sleep(15)
        self.answer(status)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
