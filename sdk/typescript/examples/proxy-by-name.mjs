// The seed's first example: with an API key, any credential by name.
import { AgentKeys } from "@agentkeys-io/sdk";

const ak = new AgentKeys({
  token: "ak_ws_your_key...",
  proxyUrl: "https://proxy.agentkeys.io",
});

// Proxy by credential name
const res = await ak.proxy("resend", {
  url: "https://api.resend.com/emails",
  method: "POST",
  body: { from: "hi@example.com", to: "user@example.com", subject: "Hello", text: "Sent via AgentKeys" },
});
console.log(await res.json());
