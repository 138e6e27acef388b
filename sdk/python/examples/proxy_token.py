# The seed's third example: a proxy token alone (the seed elides the body as
# {...}; this is the first example's).
from agentkeys import AgentKeys

ak = AgentKeys(token="pxr_resend_abc123...")
res = ak.proxy(credential="ignored", url="https://api.resend.com/emails", method="POST",
               body={"from": "hi@example.com", "to": "user@example.com", "subject": "Hello", "text": "Sent via AgentKeys"})
print(res.json())
