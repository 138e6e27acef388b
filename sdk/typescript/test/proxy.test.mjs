// The SDK against a real `agentkeys up` and a real `agentkeys serve`: the
// shared cases of sdk/cases.json, the scoped client, environment defaults,
// refusals without a request, and the seed's three examples as programs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { AgentKeys, AgentKeysError } from "../dist/index.js";
import * as h from "./harness.mjs";

let upstream, dead, local, serve;

before(async () => {
  const bin = h.agentkeysBinary();
  upstream = await h.startUpstream();
  dead = await h.deadPort();
  [local, serve] = await Promise.all([h.startLocal(bin, upstream, dead), h.startServe(bin, upstream, dead)]);
});
after(h.cleanup);

for (const envName of ["local", "serve"]) {
  describe(`cases.json through ${envName === "local" ? "agentkeys up" : "agentkeys serve"}`, () => {
    for (const c of h.contract.cases) {
      if (c.sdks && !c.sdks.includes("typescript")) continue;
      for (const auth of h.authModes(c)) {
        test(`${c.name} (${auth})`, () => h.runCase(envName === "local" ? local : serve, upstream, dead, c, auth));
      }
    }
  });
}

describe("scoped client", () => {
  test("get, post, put, patch, delete and request send their methods and bodies", async () => {
    const echo = new AgentKeys({ token: local.key, proxyUrl: local.proxyUrl }).for("echo");
    const check = async (p, method, body) => {
      const res = await p;
      assert.equal(res.status, 200);
      const e = await res.json();
      assert.equal(e.method, method);
      assert.equal(e.body, body);
      assert.equal(e.headers.authorization, `Bearer ${h.SECRETS.echo}`);
    };
    await check(echo.get(`${upstream.url}/a`), "GET", "");
    await check(echo.delete(`${upstream.url}/a`), "DELETE", "");
    await check(echo.post(`${upstream.url}/a`, { x: 1 }), "POST", '{"x":1}');
    await check(echo.put(`${upstream.url}/a`, [1]), "PUT", "[1]");
    await check(echo.patch(`${upstream.url}/a`, "raw", { headers: { "content-type": "text/plain" } }), "PATCH", "raw");
    await check(echo.request("OPTIONS", `${upstream.url}/a`), "OPTIONS", "");
    await check(echo.request("POST", new URL(`${upstream.url}/a`), { body: { y: 2 } }), "POST", '{"y":2}');
  });
});

describe("defaults and refusals", () => {
  const saved = { ...process.env };
  const restore = () => {
    for (const k of Object.keys(process.env)) if (k.startsWith("AGENTKEYS_")) delete process.env[k];
    Object.assign(process.env, saved);
  };

  test("token from AGENTKEYS_PROXY_TOKEN_*, URL from AGENTKEYS_PROXY_URL", async () => {
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith("AGENTKEYS_")) delete process.env[k];
      process.env.AGENTKEYS_PROXY_TOKEN_ECHO = local.tokens.echo;
      process.env.AGENTKEYS_PROXY_TOKEN_ZZZ = "pxr_not_first";
      process.env.AGENTKEYS_PROXY_URL = local.proxyUrl;
      const ak = new AgentKeys();
      assert.equal(ak.proxyUrl, `${local.proxyUrl}/v1/proxy`);
      const e = await (await ak.proxy("ignored", { url: `${upstream.url}/env` })).json();
      assert.equal(e.headers.authorization, `Bearer ${h.SECRETS.echo}`);
      // AGENTKEYS_API_KEY comes first.
      process.env.AGENTKEYS_API_KEY = local.key;
      const e2 = await (await new AgentKeys().proxy("resend", { url: `${upstream.url}/env` })).json();
      assert.equal(e2.headers.authorization, `Bearer ${h.SECRETS.resend}`);
      delete process.env.AGENTKEYS_PROXY_URL;
      assert.equal(new AgentKeys().proxyUrl, "http://127.0.0.1:8787/v1/proxy");
      assert.equal(new AgentKeys({ proxyUrl: "https://p.example/base/v1/proxy/" }).proxyUrl, "https://p.example/base/v1/proxy");
    } finally {
      restore();
    }
  });

  test("no token, a bad proxy URL, no credential name with ak_ws_, a bad body: refused before any request", async () => {
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith("AGENTKEYS_")) delete process.env[k];
      assert.throws(() => new AgentKeys(), (e) => e instanceof AgentKeysError && e.code === "BAD_REQUEST" && /AGENTKEYS_API_KEY/.test(e.message));
      assert.throws(() => new AgentKeys({ token: "pxr_x", proxyUrl: "ftp://x" }), /http:\/\/ or https:\/\//);
      const before = upstream.log.length;
      const ak = new AgentKeys({ token: local.key, proxyUrl: local.proxyUrl });
      await assert.rejects(ak.proxy("", { url: `${upstream.url}/x` }), (e) => e.code === "BAD_REQUEST" && /credential name/.test(e.message));
      await assert.rejects(ak.proxy("echo", { url: `${upstream.url}/x`, method: "POST", body: 42 }), TypeError);
      await assert.rejects(ak.proxy("echo", { url: `${upstream.url}/x`, method: "POST", body: new Date() }), TypeError);
      assert.equal(upstream.log.length, before);
    } finally {
      restore();
    }
  });

  test("a proxy nobody runs is UNAVAILABLE with status 0", async () => {
    const ak = new AgentKeys({ token: local.tokens.echo, proxyUrl: `http://${dead}` });
    await assert.rejects(ak.proxy("x", { url: `${upstream.url}/x` }), (e) => e instanceof AgentKeysError && e.code === "UNAVAILABLE" && e.status === 0);
  });

  test("an abort signal cancels a response that is still streaming", async () => {
    const ak = new AgentKeys({ token: local.tokens.echo, proxyUrl: local.proxyUrl });
    const ctl = new AbortController();
    const res = await ak.proxy("x", { url: `${upstream.url}/sse?id=abort-test`, signal: ctl.signal });
    const reader = res.body.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.equal(first, "data: one\n\n");
    ctl.abort(new Error("enough"));
    await assert.rejects(reader.read(), /enough/);
  });
});

describe("the seed's TypeScript examples, as programs", () => {
  const run = promisify(execFile);
  let dir;
  before(() => {
    // The examples import "@agentkeys-io/sdk": resolve it to this package.
    dir = mkdtempSync(path.join(tmpdir(), "agentkeys-sdk-examples-"));
    mkdirSync(path.join(dir, "node_modules/@agentkeys-io"), { recursive: true });
    symlinkSync(h.sdkRoot, path.join(dir, "node_modules/@agentkeys-io/sdk"), "dir");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // Only the addresses and the placeholder tokens are replaced.
  const example = async (file, env) => {
    let src = readFileSync(path.join(h.sdkRoot, "examples", file), "utf8");
    src = src.replaceAll("https://api.resend.com", upstream.url).replaceAll("https://api.stripe.com", upstream.url)
      .replaceAll("https://proxy.agentkeys.io", env.proxyUrl)
      .replaceAll("ak_ws_your_key...", env.key).replaceAll("pxr_resend_abc123...", env.tokens.resend);
    writeFileSync(path.join(dir, file), src);
    const from = upstream.log.length;
    const { stdout } = await run(process.execPath, [path.join(dir, file)], {
      env: { PATH: process.env.PATH, AGENTKEYS_PROXY_URL: env.proxyUrl },
    });
    return { stdout, seen: upstream.log.slice(from) };
  };

  for (const envName of ["local", "serve"]) {
    test(`with an API key, a credential by name (${envName})`, async () => {
      const env = envName === "local" ? local : serve;
      const { stdout, seen } = await example("proxy-by-name.mjs", env);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].method, "POST");
      assert.equal(seen[0].path, "/emails");
      assert.equal(seen[0].headers.authorization, `Bearer ${h.SECRETS.resend}`);
      assert.deepEqual(JSON.parse(seen[0].body), { from: "hi@example.com", to: "user@example.com", subject: "Hello", text: "Sent via AgentKeys" });
      assert.match(stdout, /Sent via AgentKeys/);
    });

    test(`scoped clients (${envName})`, async () => {
      const env = envName === "local" ? local : serve;
      const { seen } = await example("scoped-client.mjs", env);
      assert.deepEqual(seen.map((r) => [r.method, r.path, r.headers.authorization]), [
        ["GET", "/v1/balance", `Bearer ${h.SECRETS.stripe}`],
        ["POST", "/emails", `Bearer ${h.SECRETS.resend}`],
      ]);
      assert.deepEqual(JSON.parse(seen[1].body), { from: "hi@example.com", to: "user@example.com", subject: "Test", text: "Hello" });
    });

    test(`a proxy token alone, proxy URL from the environment (${envName})`, async () => {
      const env = envName === "local" ? local : serve;
      const { stdout, seen } = await example("proxy-token.mjs", env);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].headers.authorization, `Bearer ${h.SECRETS.resend}`);
      assert.match(stdout, /Sent via AgentKeys/);
    });
  }
});
