// The seed's second example: a scoped client bound to a credential
// (ak as in the first example).
import { AgentKeys } from "@agentkeys-io/sdk";

const ak = new AgentKeys({
  token: "ak_ws_your_key...",
  proxyUrl: "https://proxy.agentkeys.io",
});

const stripe = ak.for("stripe");
const resend = ak.for("resend");

const balance = await stripe.get("https://api.stripe.com/v1/balance");
await resend.post("https://api.resend.com/emails", {
  from: "hi@example.com", to: "user@example.com", subject: "Test", text: "Hello"
});
