"""Webhook signature checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from typing import Mapping, Optional, Union

#: Standard Webhooks receivers accept timestamps within ±5 minutes.
DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300

_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")


def _bytes(b: Union[bytes, bytearray, memoryview, str]) -> bytes:
    return b.encode("utf-8") if isinstance(b, str) else bytes(b)


def verify_webhook(raw_body: Union[bytes, str], signature: str, secret: str) -> bool:
    """Checks an X-AgentKeys-Signature header: the hex HMAC-SHA256 of the raw
    request body, keyed with the secret string as UTF-8 (the seed's snippet).
    Hex digits may be either case. Returns False, never raises, for a wrong,
    malformed or missing signature; the comparison is constant-time.

    Pass the body exactly as received (Flask's request.data), not re-encoded JSON.
    """
    if not isinstance(signature, str) or not isinstance(secret, str) or not secret or not _HEX.match(signature):
        return False
    expected = hmac.new(secret.encode("utf-8"), _bytes(raw_body), hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.lower(), expected)


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    v = headers.get(name)
    if v is None:
        for k in headers:
            if k.lower() == name:
                return headers[k]
    return v


def verify_standard_webhook(raw_body: Union[bytes, str], headers: Mapping[str, str], secret: str,
                            tolerance: float = DEFAULT_WEBHOOK_TOLERANCE_SECONDS, now: Optional[float] = None) -> bool:
    """Checks a Standard Webhooks delivery (https://www.standardwebhooks.com):
    webhook-signature holds one or more space-separated ``v1,<base64>``
    signatures of ``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256
    keyed with the base64-decoded part of the ``whsec_…`` secret. Returns
    True when one v1 signature matches and webhook-timestamp (Unix seconds)
    is within tolerance seconds of now (default: the current time); False
    otherwise, never raises. headers may be any mapping (Flask's, a dict).
    """
    msg_id = _header(headers, "webhook-id")
    ts = _header(headers, "webhook-timestamp")
    sigs = _header(headers, "webhook-signature")
    if not msg_id or not ts or not sigs or not _TIMESTAMP.match(ts):
        return False
    current = int(time.time() if now is None else now)
    if abs(current - int(ts)) > tolerance:
        return False
    s = secret[6:] if isinstance(secret, str) and secret.startswith("whsec_") else secret
    try:
        key = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    if not key:
        return False
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode("utf-8") + _bytes(raw_body), hashlib.sha256).digest()
    ok = False
    for part in sigs.split(" "):
        version, _, b64 = part.partition(",")
        if version != "v1" or not b64:
            continue
        try:
            given = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            ok = True
    return ok
