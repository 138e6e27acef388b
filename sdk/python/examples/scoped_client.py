# The seed's second example: scoped clients (ak as in the first example).
from agentkeys import AgentKeys

ak = AgentKeys(
    token="ak_ws_your_key...",
    proxy_url="https://proxy.agentkeys.io",
)

stripe = ak.for_credential("stripe")
resend = ak.for_credential("resend")

balance = stripe.get("https://api.stripe.com/v1/balance")
resend.post("https://api.resend.com/emails", body={"from": "hi@example.com", "to": "user@example.com", "subject": "Test", "text": "Hello"})
