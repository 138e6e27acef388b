# The seed's first example: with an API key, any credential by name.
from agentkeys import AgentKeys

ak = AgentKeys(
    token="ak_ws_your_key...",
    proxy_url="https://proxy.agentkeys.io",
)

# Proxy by credential name
res = ak.proxy(
    credential="resend",
    url="https://api.resend.com/emails",
    method="POST",
    body={"from": "hi@example.com", "to": "user@example.com", "subject": "Hello", "text": "Sent via AgentKeys"},
)
print(res.json())
