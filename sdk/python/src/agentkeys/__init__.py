"""agentkeys — call APIs through the agentkeys proxy.

The agent holds a pxr_ proxy token or an ak_ws_ workspace key; the proxy
injects the real credential, so the agent never sees it::

    from agentkeys import AgentKeys
    ak = AgentKeys()  # AGENTKEYS_API_KEY / AGENTKEYS_PROXY_TOKEN_*, AGENTKEYS_PROXY_URL
    balance = ak.for_credential("stripe").get("https://api.stripe.com/v1/balance")
"""

from ._client import DEFAULT_PROXY_URL, VERSION, AgentKeys, Response, ScopedClient
from ._errors import AgentKeysError, HTTPStatusError
from ._webhook import DEFAULT_WEBHOOK_TOLERANCE_SECONDS, verify_standard_webhook, verify_webhook

__version__ = VERSION

__all__ = [
    "AgentKeys",
    "AgentKeysError",
    "DEFAULT_PROXY_URL",
    "DEFAULT_WEBHOOK_TOLERANCE_SECONDS",
    "HTTPStatusError",
    "Response",
    "ScopedClient",
    "VERSION",
    "verify_standard_webhook",
    "verify_webhook",
]
