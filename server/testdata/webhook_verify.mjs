// Runs the seed's TypeScript verification snippet (its type annotations
// removed: node runs JavaScript) against a delivery the receiver recorded.
// Usage: AGENTKEYS_WEBHOOK_SECRET=whsec_... node webhook_verify.mjs BODY_BASE64 SIGNATURE
// Prints "verified" or "refused".
import crypto from "crypto";
const WEBHOOK_SECRET = process.env.AGENTKEYS_WEBHOOK_SECRET;
export function verifyWebhook(rawBody, signature) {
  const expected = crypto
    .createHmac("sha256", WEBHOOK_SECRET)
    .update(rawBody, "utf8")
    .digest("hex");
  // Use timingSafeEqual to prevent timing attacks
  return crypto.timingSafeEqual(
    Buffer.from(signature, "hex"),
    Buffer.from(expected, "hex")
  );
}
const [body64, sig] = process.argv.slice(2);
const raw = Buffer.from(body64, "base64").toString();
console.log(verifyWebhook(raw, sig) ? "verified" : "refused");
