/**
 * Webhook signature checks. Both use Web Crypto (global `crypto.subtle`, or
 * `node:crypto`'s on Node 18), so they return Promises.
 */

/** Standard Webhooks receivers accept timestamps within ±5 minutes. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

/**
 * Checks an `X-AgentKeys-Signature` header: the hex HMAC-SHA256 of the raw
 * request body, keyed with the secret string as UTF-8 — the seed's snippet.
 * Hex digits may be either case. Returns false (never throws) for a wrong,
 * malformed or missing signature; the comparison takes the same time
 * wherever the first difference is.
 *
 * Pass the body exactly as received (`express.raw()`), not re-serialised JSON.
 */
export async function verifyWebhook(rawBody: string | Uint8Array, signature: string, secret: string): Promise<boolean> {
  if (typeof signature !== "string" || typeof secret !== "string" || secret === "") return false;
  const given = fromHex(signature);
  if (given === null || given.length !== 32) return false;
  const mac = await hmacSHA256(encoder.encode(secret), bytes(rawBody));
  return equal(given, mac);
}

/** Headers as Fetch `Headers`, or Node's/Express's lower-cased object. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/** Options of {@link verifyStandardWebhook}. */
export interface StandardWebhookOptions {
  /** How far webhook-timestamp may be from now; default 300 s. */
  toleranceSeconds?: number;
  /** The current time in ms since the epoch; default `Date.now()`. */
  now?: number;
}

/**
 * Checks a Standard Webhooks delivery (https://www.standardwebhooks.com):
 * `webhook-signature` holds one or more space-separated `v1,<base64>`
 * signatures of `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256
 * keyed with the base64-decoded part of the `whsec_…` secret. Returns true
 * when one v1 signature matches and webhook-timestamp (Unix seconds) is
 * within the tolerance of now; false otherwise, never throws.
 */
export async function verifyStandardWebhook(
  rawBody: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: StandardWebhookOptions = {},
): Promise<boolean> {
  const id = header(headers, "webhook-id");
  const ts = header(headers, "webhook-timestamp");
  const sigs = header(headers, "webhook-signature");
  if (!id || !ts || !sigs || !/^\d{1,15}$/.test(ts)) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(ts)) > tolerance) return false;
  const key = fromBase64(typeof secret === "string" && secret.startsWith("whsec_") ? secret.slice(6) : secret);
  if (key === null || key.length === 0) return false;
  const body = bytes(rawBody);
  const prefix = encoder.encode(`${id}.${ts}.`);
  const msg = new Uint8Array(prefix.length + body.length);
  msg.set(prefix);
  msg.set(body, prefix.length);
  const mac = await hmacSHA256(key, msg);
  let ok = false;
  for (const part of sigs.split(" ")) {
    const [version, b64] = part.split(",", 2);
    if (version !== "v1" || !b64) continue;
    const given = fromBase64(b64);
    if (given !== null && equal(given, mac)) ok = true;
  }
  return ok;
}

function header(h: WebhookHeaders, name: string): string | undefined {
  if (typeof (h as Headers).get === "function") return (h as Headers).get(name) ?? undefined;
  const rec = h as Record<string, string | string[] | undefined>;
  let v = rec[name];
  if (v === undefined) {
    const k = Object.keys(rec).find((k) => k.toLowerCase() === name);
    v = k === undefined ? undefined : rec[k];
  }
  return Array.isArray(v) ? v.join(" ") : v;
}

function bytes(b: string | Uint8Array): Uint8Array {
  return typeof b === "string" ? encoder.encode(b) : b;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function fromBase64(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

async function subtle(): Promise<SubtleCrypto> {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.subtle) return c.subtle;
  // Node 18 has Web Crypto only as node:crypto's webcrypto. The specifier
  // is built at run time so bundlers for browsers leave it alone.
  const mod = (await import("node:" + "crypto")) as { webcrypto: Crypto };
  return mod.webcrypto.subtle;
}

async function hmacSHA256(key: Uint8Array, msg: Uint8Array): Promise<Uint8Array> {
  const s = await subtle();
  const k = await s.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await s.sign("HMAC", k, msg as BufferSource));
}
