// The seed's third example: a proxy token alone, single credential, no name
// needed (the seed elides the body as { ... }; this is the first example's).
import { AgentKeys } from "@agentkeys-io/sdk";

const ak = new AgentKeys({ token: "pxr_resend_abc123..." });
const res = await ak.proxy("ignored", {
  url: "https://api.resend.com/emails",
  method: "POST",
  body: { from: "hi@example.com", to: "user@example.com", subject: "Hello", text: "Sent via AgentKeys" },
});
console.log(await res.json());
