/**
 * @agentkeys-io/sdk — call APIs through the agentkeys proxy. The agent holds a
 * `pxr_` proxy token or an `ak_ws_` workspace key; the proxy injects the real
 * credential, so the agent never sees it.
 *
 * @example
 * import { AgentKeys } from "@agentkeys-io/sdk";
 * const ak = new AgentKeys(); // AGENTKEYS_API_KEY / AGENTKEYS_PROXY_TOKEN_*, AGENTKEYS_PROXY_URL
 * const res = await ak.for("stripe").get("https://api.stripe.com/v1/balance");
 */
export { AgentKeys, DEFAULT_PROXY_URL } from "./client.js";
export type { AgentKeysOptions, Body, ProxyOptions, RequestOptions, ScopedClient } from "./client.js";
export { AgentKeysError } from "./errors.js";
export { verifyWebhook, verifyStandardWebhook, DEFAULT_WEBHOOK_TOLERANCE_SECONDS } from "./webhook.js";
export type { StandardWebhookOptions, WebhookHeaders } from "./webhook.js";
export { VERSION } from "./version.js";
