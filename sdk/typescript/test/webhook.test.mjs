// Webhook verification: the shared vectors of sdk/cases.json (computed with
// openssl), the seed's own snippet, and the standardwebhooks reference
// library signing and verifying in both directions.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { verifyStandardWebhook, verifyWebhook } from "../dist/index.js";

const { webhooks } = JSON.parse(readFileSync(new URL("../../cases.json", import.meta.url), "utf8"));

// The seed's snippet, with the secret passed in and a length check so it
// returns false where timingSafeEqual would throw.
function seedVerify(rawBody, signature, secret) {
  const expected = crypto.createHmac("sha256", secret).update(rawBody, "utf8").digest("hex");
  const a = Buffer.from(signature, "hex");
  const b = Buffer.from(expected, "hex");
  return a.length === b.length && signature.length === expected.length && crypto.timingSafeEqual(a, b);
}

for (const v of webhooks.seed) {
  test(`verifyWebhook: ${v.name}`, async () => {
    assert.equal(await verifyWebhook(v.body, v.signature, v.secret), v.valid);
    assert.equal(await verifyWebhook(new TextEncoder().encode(v.body), v.signature, v.secret), v.valid);
    if (/^[0-9a-fA-F]*$/.test(v.signature)) assert.equal(seedVerify(v.body, v.signature, v.secret), v.valid, "the seed's snippet disagrees");
  });
}

test("verifyWebhook agrees with the seed's snippet on random bodies and secrets", async () => {
  for (let i = 0; i < 50; i++) {
    const body = crypto.randomBytes(i * 7).toString("base64") + "é€";
    const secret = crypto.randomBytes(16).toString("hex");
    const sig = crypto.createHmac("sha256", secret).update(body, "utf8").digest("hex");
    assert.equal(await verifyWebhook(body, sig, secret), true);
    assert.equal(await verifyWebhook(body + " ", sig, secret), false);
    assert.equal(await verifyWebhook(body, sig, secret + "x"), false);
  }
  assert.equal(await verifyWebhook("{}", undefined, "s"), false);
  assert.equal(await verifyWebhook("{}", "00".repeat(32), ""), false);
});

for (const v of webhooks.standard) {
  test(`verifyStandardWebhook: ${v.name}`, async () => {
    const headers = { "webhook-id": v.id, "webhook-timestamp": v.timestamp, "webhook-signature": v.signature };
    const opts = { now: v.now * 1000, ...(v.toleranceSeconds ? { toleranceSeconds: v.toleranceSeconds } : {}) };
    assert.equal(await verifyStandardWebhook(v.body, headers, v.secret, opts), v.valid);
    assert.equal(await verifyStandardWebhook(v.body, new Headers(Object.entries(headers).filter(([, x]) => x)), v.secret, opts), v.valid);
  });
}

test("verifyStandardWebhook and the standardwebhooks library accept each other's signatures", async () => {
  const secret = "whsec_" + crypto.randomBytes(32).toString("base64");
  const wh = new Webhook(secret);
  const body = JSON.stringify({ event: "credential.expiring", data: { id: "cred_1" } });
  const id = "msg_" + crypto.randomBytes(6).toString("hex");
  const now = new Date();
  const ts = String(Math.floor(now.getTime() / 1000));
  const headers = { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": wh.sign(id, now, body) };
  assert.equal(await verifyStandardWebhook(body, headers, secret), true);
  assert.equal(await verifyStandardWebhook(body + " ", headers, secret), false);
  // Ours, by hand per the spec, verified by the library.
  const key = Buffer.from(secret.slice(6), "base64");
  const mine = "v1," + crypto.createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
  assert.deepEqual(wh.verify(body, { ...headers, "webhook-signature": mine }), JSON.parse(body));
  // A timestamp an hour old is refused by both.
  const old = String(Number(ts) - 3600);
  const oldSig = wh.sign(id, new Date(Number(old) * 1000), body);
  assert.equal(await verifyStandardWebhook(body, { ...headers, "webhook-timestamp": old, "webhook-signature": oldSig }, secret), false);
  assert.throws(() => wh.verify(body, { ...headers, "webhook-timestamp": old, "webhook-signature": oldSig }));
});
