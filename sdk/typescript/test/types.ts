// Compile-time check (tsc --noEmit, strict): the seed's TypeScript snippets
// type-check against the SDK's declarations as written. Never run.
import { AgentKeys, AgentKeysError, verifyStandardWebhook, verifyWebhook } from "../src/index.js";

export async function seedExamples(): Promise<void> {
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

  const stripe = ak.for("stripe");
  const resend = ak.for("resend");
  const balance = await stripe.get("https://api.stripe.com/v1/balance");
  await resend.post("https://api.resend.com/emails", { from: "hi@example.com", to: "user@example.com", subject: "Test", text: "Hello" });
  const status: number = balance.status;

  const ak2 = new AgentKeys({ token: "pxr_resend_abc123..." });
  const res2: Response = await ak2.proxy("ignored", { url: "https://api.resend.com/emails", method: "POST", body: { subject: "Hello" } });

  // Bodies fetch takes pass through; signal and headers as in fetch.
  await ak.proxy("x", { url: new URL("https://a.example"), body: new URLSearchParams({ a: "1" }), headers: [["x-a", "1"]], signal: AbortSignal.timeout(1000) });
  await ak.for("x").request("PUT", "https://a.example", { body: new Uint8Array([1]) });

  try {
    await ak.proxy("x", { url: "https://a.example" });
  } catch (e) {
    if (e instanceof AgentKeysError) {
      const fields: [string, number, string, string] = [e.code, e.status, e.message, e.requestId];
      console.log(fields, status, res2);
    }
  }
  const ok: boolean = await verifyWebhook("{}", "sig", "secret");
  const ok2: boolean = await verifyStandardWebhook(new Uint8Array(), { "webhook-id": "m" }, "whsec_x", { toleranceSeconds: 60 });
  console.log(ok, ok2);
}
