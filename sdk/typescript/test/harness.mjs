// Test harness: a real agentkeys binary (`agentkeys up`, `agentkeys serve`),
// an upstream on loopback that behaves as sdk/cases.json describes, and the
// shared case runner.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AgentKeys, AgentKeysError } from "../dist/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../../..");
export const sdkRoot = path.resolve(here, "..");
export const contract = JSON.parse(readFileSync(path.join(repoRoot, "sdk/cases.json"), "utf8"));

/** Secrets of the test credentials (the upstream sees them, the SDK never does). */
export const SECRETS = { echo: "sk_echo_" + randomBytes(8).toString("hex"), resend: "re_test_" + randomBytes(8).toString("hex"), stripe: "sk_test_" + randomBytes(8).toString("hex") };

const cleanups = [];
/** Runs every cleanup registered so far (processes, temp dirs), last first. */
export async function cleanup() {
  while (cleanups.length) await cleanups.pop()();
}

function tempDir(prefix) {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  cleanups.push(async () => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** AGENTKEYS_BIN, or the binary built from this repository into a temp dir. */
export function agentkeysBinary() {
  if (process.env.AGENTKEYS_BIN) return process.env.AGENTKEYS_BIN;
  const bin = path.join(tempDir("agentkeys-sdk-bin-"), "agentkeys");
  execFileSync("go", ["build", "-o", bin, "./cmd/agentkeys"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  return bin;
}

/** Starts a process and resolves with the first stdout match of re. */
function startProcess(bin, args, env, re) {
  const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start in 20 s: ${stderr}`)), 20000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited ${code}: ${stderr}`));
    });
  });
}

/** A loopback port nothing listens on. */
export async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

/**
 * The upstream of sdk/cases.json on 127.0.0.1: /status/N, /sse?id=X with
 * /release?id=X, anything else echoes. Every request is kept in `log`.
 */
export async function startUpstream() {
  const log = [];
  const released = new Map(); // id → count
  const waiters = new Map(); // id → [{need, resolve}]
  const release = (id) => {
    const n = (released.get(id) ?? 0) + 1;
    released.set(id, n);
    for (const w of waiters.get(id) ?? []) if (n >= w.need) w.resolve(true);
  };
  const waitFor = (id, need) => new Promise((resolve) => {
    if ((released.get(id) ?? 0) >= need) return resolve(true);
    const w = { need, resolve };
    waiters.set(id, [...(waiters.get(id) ?? []), w]);
    setTimeout(() => resolve(false), 5000).unref();
  });
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const u = new URL(req.url, "http://upstream");
    log.push({ method: req.method, path: req.url, headers: req.headers, body: body.toString("utf8") });
    if (u.pathname === "/release") {
      release(u.searchParams.get("id"));
      res.end("ok");
      return;
    }
    const st = u.pathname.match(/^\/status\/(\d{3})$/);
    if (st) {
      const code = Number(st[1]);
      const h = { "content-type": "application/json" };
      if (code >= 300 && code < 400) h.location = "/echo";
      res.writeHead(code, h);
      res.end(JSON.stringify({ status: code }));
      return;
    }
    if (u.pathname === "/sse") {
      const id = u.searchParams.get("id");
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write("data: one\n\n");
      if (!(await waitFor(id, 1))) return res.end("data: timeout\n\n");
      res.write("data: two\n\n");
      if (!(await waitFor(id, 2))) return res.end("data: timeout\n\n");
      res.end("data: three\n\n");
      return;
    }
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ method: req.method, path: req.url, headers, body: body.toString("utf8"), bodyBase64: body.toString("base64") }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
  const hostPort = `127.0.0.1:${server.address().port}`;
  return { url: `http://${hostPort}`, hostPort, log };
}

/**
 * A local vault in a temp AGENTKEYS_HOME with credentials echo, resend and
 * stripe (allowlisted for the upstream and the dead port), an agent with
 * pxr_ tokens for echo and resend, and `agentkeys up` on a free port.
 */
export async function startLocal(bin, upstream, dead) {
  const home = tempDir("agentkeys-sdk-home-");
  const env = { PATH: process.env.PATH, HOME: home, AGENTKEYS_HOME: home, AGENTKEYS_MASTER_KEY: randomBytes(32).toString("base64") };
  const run = (...args) => execFileSync(bin, args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const key = JSON.parse(run("init", "--json")).workspaceKey;
  for (const [name, value] of Object.entries(SECRETS)) {
    // The upstream echoes what it received, the injected key included: the credentials opt out of echo redaction.
    run("credentials", "add", "--name", name, "--type", "API_KEY", "--value", value, "--allow-host", upstream.hostPort, "--allow-host", dead, "--raw-responses");
  }
  const tokens = {
    echo: run("agents", "create", "--name", "bot", "--credential", "echo").trim(),
    resend: run("agents", "assign", "bot", "--credential", "resend").trim(),
  };
  const proxyUrl = await startProcess(bin, ["up", "--listen", "127.0.0.1:0"], env, /export AGENTKEYS_PROXY_URL=(\S+)\n/);
  return { name: "agentkeys up", proxyUrl, key, tokens };
}

/**
 * `agentkeys serve` on SQLite in a temp dir (loopback targets allowed), a
 * workspace signed up over the REST API, and the same credentials, agent
 * and tokens as startLocal, made through the REST API.
 */
export async function startServe(bin, upstream, dead) {
  const home = tempDir("agentkeys-sdk-serve-");
  const env = { PATH: process.env.PATH, HOME: home, AGENTKEYS_HOME: home, AGENTKEYS_SERVER_KEY: randomBytes(32).toString("base64") };
  const base = await startProcess(bin, ["serve", "--listen", "127.0.0.1:0", "--allow-loopback-targets", "--data-dir", path.join(home, "data")], env,
    /agentkeys server listening on (\S+)/);
  const api = async (method, p, body, key) => {
    const res = await fetch(base + "/api/v1" + p, {
      method, body: JSON.stringify(body),
      headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    });
    const out = await res.json();
    assert.ok(res.ok, `${method} ${p}: ${res.status} ${JSON.stringify(out)}`);
    return out;
  };
  const { apiKey: key } = await api("POST", "/signup", { email: "owner@example.com", password: "correct horse battery", workspace: "SDK" });
  const ids = {};
  for (const [name, value] of Object.entries(SECRETS)) {
    ids[name] = (await api("POST", "/credentials", { name, type: "API_KEY", value, allowedHosts: [upstream.hostPort, dead], rawResponses: true }, key)).id;
  }
  const agent = await api("POST", "/agents", { name: "bot" }, key);
  const tokens = {};
  for (const name of ["echo", "resend"]) {
    tokens[name] = (await api("POST", `/agents/${agent.id}/credentials`, { credentialId: ids[name] }, key)).proxyToken;
  }
  return { name: "agentkeys serve", proxyUrl: base, key, tokens };
}

/** The body of a case in this SDK's terms. */
function makeBody(b) {
  if (!b) return undefined;
  if ("json" in b) return b.json;
  if ("text" in b) return b.text;
  if ("base64" in b) return new Uint8Array(Buffer.from(b.base64, "base64"));
  if ("chunks" in b) {
    const parts = [...b.chunks];
    return new ReadableStream({
      pull(ctl) {
        const p = parts.shift();
        if (p === undefined) ctl.close();
        else ctl.enqueue(new TextEncoder().encode(p));
      },
    });
  }
  if ("form" in b) return new URLSearchParams(b.form);
  if ("multipart" in b) {
    const fd = new FormData();
    for (const [k, v] of Object.entries(b.multipart)) fd.append(k, v);
    return fd;
  }
  throw new Error(`unknown body kind ${Object.keys(b)}`);
}

/** The auth modes a case runs with. */
export function authModes(c) {
  return !c.auth || c.auth === "both" ? ["token", "key"] : [c.auth];
}

let sseID = 0;

/** Runs one case of sdk/cases.json with one auth mode against env. */
export async function runCase(env, upstream, dead, c, auth) {
  const token = { token: env.tokens.echo, key: env.key, "bad-token": "pxr_" + "A".repeat(43) }[auth];
  const credential = c.credential ?? (auth === "key" ? "echo" : "ignored");
  const ak = new AgentKeys({ token, proxyUrl: env.proxyUrl });
  let url = c.request.url ? c.request.url.replace("$DEAD", `http://${dead}`) : upstream.url + c.request.path;
  const id = `sse${++sseID}`;
  if (c.expect.events) url += `?id=${id}`;
  const want = c.expect;
  let res;
  try {
    res = await ak.proxy(credential, { url, method: c.request.method, body: makeBody(c.request.body), headers: c.request.headers });
  } catch (err) {
    if (!want.error) throw err;
    assert.ok(err instanceof AgentKeysError, `want AgentKeysError, got ${err}`);
    assert.equal(err.code, want.error.code);
    assert.equal(err.status, want.error.status);
    assert.match(err.requestId, /^req_/);
    assert.ok(err.message.length > 0);
    assert.ok(!err.message.includes(token), "the message holds the token");
    return;
  }
  assert.ok(!want.error, `want ${JSON.stringify(want.error)}, got a response ${res.status}`);
  assert.equal(res.status, want.status);
  for (const [k, v] of Object.entries(want.headers ?? {})) assert.equal(res.headers.get(k), v, k);
  if (want.json) assert.deepEqual(await res.json(), want.json);
  if (want.echo) {
    const echo = await res.json();
    const e = want.echo;
    if (e.method) assert.equal(echo.method, e.method);
    if (e.path) assert.equal(echo.path, e.path);
    if ("body" in e) assert.equal(echo.body, e.body);
    if (e.bodyBase64) assert.equal(echo.bodyBase64, e.bodyBase64);
    if (e.bodyContains) assert.ok(echo.body.includes(e.bodyContains), echo.body);
    if (e.json) assert.deepEqual(JSON.parse(echo.body), e.json);
    if (e.contentTypePrefix) assert.ok((echo.headers["content-type"] ?? "").startsWith(e.contentTypePrefix), echo.headers["content-type"]);
    for (const [k, v] of Object.entries(e.headers ?? {})) assert.equal(echo.headers[k], v.replace("$SECRET", SECRETS.echo), k);
    for (const k of e.absentHeaders ?? []) assert.equal(echo.headers[k], undefined, k);
  }
  if (want.events) {
    const events = [];
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i).replace(/^data: /, "");
        buf = buf.slice(i + 2);
        events.push(ev);
        // Only now may the upstream send the next event: a buffering SDK
        // would see "timeout" instead.
        if (ev !== "three" && ev !== "timeout") await fetch(`${upstream.url}/release?id=${id}`).then((r) => r.text());
      }
    }
    assert.deepEqual(events, want.events);
  }
  if (!want.json && !want.echo && !want.events) await res.body?.cancel();
}
