import { AgentKeysError } from "./errors.js";

/** Where `agentkeys up` listens by default. */
export const DEFAULT_PROXY_URL = "http://127.0.0.1:8787";

/** Options of {@link AgentKeys}. */
export interface AgentKeysOptions {
  /**
   * A proxy token (`pxr_…`, one credential) or a workspace key (`ak_ws_…`,
   * any credential by name). Default: `AGENTKEYS_API_KEY`, then the first
   * `AGENTKEYS_PROXY_TOKEN_*` variable (by name).
   */
  token?: string;
  /**
   * The proxy's address: `agentkeys up` (`http://127.0.0.1:8787`) or a
   * server's (`https://agentkeys.example.com`); `/v1/proxy` is added unless
   * the URL already ends with it. Default: `AGENTKEYS_PROXY_URL`, then
   * `http://127.0.0.1:8787`.
   */
  proxyUrl?: string;
  /** The fetch to use; default the global `fetch`. */
  fetch?: typeof fetch;
}

/**
 * A request body: a plain object or array is sent as JSON with
 * `Content-Type: application/json`; anything `fetch` takes (a string,
 * `Uint8Array`, `ArrayBuffer`, `Blob`, `ReadableStream`, `FormData`,
 * `URLSearchParams`) passes through as it is.
 */
export type Body = BodyInit | Record<string, unknown> | unknown[] | null | undefined;

/** Options of {@link AgentKeys.proxy}. */
export interface ProxyOptions {
  /** The target URL; its host must be on the credential's allowlist. */
  url: string | URL;
  /** The target's method; default `GET`. */
  method?: string;
  body?: Body;
  /** Headers for the target (the credential is added by the proxy). */
  headers?: HeadersInit;
  /** Aborts the request, or the response body while it streams. */
  signal?: AbortSignal;
}

/** Options of the scoped client's methods: everything but url, method and body. */
export type RequestOptions = Omit<ProxyOptions, "url" | "method" | "body">;

/** A client bound to one credential: {@link AgentKeys.for}. */
export interface ScopedClient {
  get(url: string | URL, options?: RequestOptions): Promise<Response>;
  delete(url: string | URL, options?: RequestOptions): Promise<Response>;
  post(url: string | URL, body?: Body, options?: RequestOptions): Promise<Response>;
  put(url: string | URL, body?: Body, options?: RequestOptions): Promise<Response>;
  patch(url: string | URL, body?: Body, options?: RequestOptions): Promise<Response>;
  request(method: string, url: string | URL, options?: Omit<ProxyOptions, "url" | "method">): Promise<Response>;
}

// Headers the SDK sets itself; a caller's copies are dropped (the proxy
// reads them, the upstream never sees them).
const OWN_HEADERS = ["authorization", "x-target-url", "x-target-method", "x-credential-name"];

const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The agentkeys client: every call goes to the proxy's `/v1/proxy`, which
 * checks the token, checks the target against the credential's allowlist,
 * injects the credential and streams the upstream's answer back.
 */
export class AgentKeys {
  readonly #token: string;
  readonly #endpoint: string;
  readonly #fetch: typeof fetch;

  constructor(options: AgentKeysOptions = {}) {
    const token = (options.token ?? envToken() ?? "").trim();
    if (token === "") {
      throw new AgentKeysError("BAD_REQUEST", 0,
        "missing token: pass { token } (a pxr_… proxy token or an ak_ws_… workspace key) or set AGENTKEYS_API_KEY or AGENTKEYS_PROXY_TOKEN_<NAME>");
    }
    if (/[\x00-\x1f\x7f]/.test(token)) {
      throw new AgentKeysError("BAD_REQUEST", 0, "the token contains a control character: copy it again");
    }
    this.#token = token;
    this.#endpoint = endpoint(options.proxyUrl ?? env("AGENTKEYS_PROXY_URL") ?? DEFAULT_PROXY_URL);
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") {
      throw new AgentKeysError("BAD_REQUEST", 0, "no fetch: this runtime has no global fetch (Node 18+, Deno, Bun and browsers do); pass { fetch }");
    }
    this.#fetch = f;
  }

  /** The proxy endpoint requests go to (…/v1/proxy). */
  get proxyUrl(): string {
    return this.#endpoint;
  }

  /**
   * Sends one request through the proxy with `credential`'s secret and
   * returns the upstream's answer as a streamed `Response` (whatever its
   * status; redirects are returned, not followed). With a `pxr_` token the
   * credential name is ignored: the token names its credential.
   *
   * Throws {@link AgentKeysError} when the proxy refuses or fails the
   * request itself, or cannot be reached; an aborted `signal` rejects with
   * the abort reason.
   */
  async proxy(credential: string, options: ProxyOptions): Promise<Response> {
    if (options == null || options.url == null || String(options.url) === "") {
      throw new AgentKeysError("BAD_REQUEST", 0, "missing url: say which URL to call");
    }
    const target = String(options.url);
    const method = (options.method ?? "GET").toUpperCase();
    const headers = new Headers(options.headers);
    for (const h of OWN_HEADERS) headers.delete(h);
    headers.set("Authorization", `Bearer ${this.#token}`);
    headers.set("X-Target-Url", target);
    headers.set("X-Target-Method", method);
    if (this.#token.startsWith("ak_ws_")) {
      const name = (credential ?? "").trim();
      if (name === "") {
        throw new AgentKeysError("BAD_REQUEST", 0, "missing credential name: with a workspace key (ak_ws_…) say which credential to use");
      }
      headers.set("X-Credential-Name", name);
    }
    const body = encodeBody(options.body, headers);
    // The inbound method is the target's when fetch can send it (so HEAD
    // keeps a HEAD's framing); otherwise POST, and the proxy takes the
    // method from X-Target-Method.
    let inbound = method;
    if (!TOKEN_CHARS.test(method) || ["CONNECT", "TRACE", "TRACK"].includes(method) ||
        (body != null && (method === "GET" || method === "HEAD"))) {
      inbound = "POST";
    }
    const init: RequestInit & { duplex?: "half" } = { method: inbound, headers, redirect: "manual" };
    if (body != null) init.body = body;
    if (isReadableStream(body)) init.duplex = "half";
    if (options.signal) init.signal = options.signal;

    let res: Response;
    try {
      res = await this.#fetch(this.#endpoint, init);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      throw new AgentKeysError("UNAVAILABLE", 0,
        `cannot reach the agentkeys proxy at ${new URL(this.#endpoint).host}: is \`agentkeys up\` running, and is AGENTKEYS_PROXY_URL right?`,
        "", { cause: err });
    }
    const code = res.headers.get("X-Agentkeys-Error");
    if (code) {
      throw await proxyError(res, code, this.#token);
    }
    return res;
  }

  /** A client bound to one credential: `ak.for("stripe").get(url)`. */
  for(credential: string): ScopedClient {
    const call = (method: string, url: string | URL, body: Body, options?: RequestOptions) =>
      this.proxy(credential, { ...options, url, method, body });
    return {
      get: (url, options) => call("GET", url, undefined, options),
      delete: (url, options) => call("DELETE", url, undefined, options),
      post: (url, body, options) => call("POST", url, body, options),
      put: (url, body, options) => call("PUT", url, body, options),
      patch: (url, body, options) => call("PATCH", url, body, options),
      request: (method, url, options) => this.proxy(credential, { ...options, url, method }),
    };
  }
}

/** Builds the AgentKeysError of an answer the proxy made itself. */
async function proxyError(res: Response, headerCode: string, token: string): Promise<AgentKeysError> {
  let message = "";
  let code = headerCode;
  try {
    const text = await res.text();
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object") {
      const o = parsed as { error?: unknown; code?: unknown };
      if (typeof o.error === "string") message = o.error;
      if (typeof o.code === "string" && o.code !== "") code = o.code;
    }
  } catch {
    // Not JSON: keep the header's code and a generic message.
  }
  if (message === "") message = `the agentkeys proxy answered ${res.status} ${code}`;
  message = message.split(token).join("REDACTED");
  return new AgentKeysError(code, res.status, message, res.headers.get("X-Agentkeys-Request-Id") ?? "");
}

/** Encodes a body; sets Content-Type for JSON unless the caller set one. */
function encodeBody(body: Body, headers: Headers): BodyInit | null {
  if (body === undefined || body === null) return null;
  if (Array.isArray(body) || isPlainObject(body)) {
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    return JSON.stringify(body);
  }
  if (typeof body === "string" || body instanceof ArrayBuffer || ArrayBuffer.isView(body) ||
      isReadableStream(body) || hasTag(body, "FormData") || hasTag(body, "URLSearchParams") || hasTag(body, "Blob") ||
      hasTag(body, "File")) {
    return body as BodyInit;
  }
  throw new TypeError("body must be a plain object or array (sent as JSON), a string, Uint8Array, ArrayBuffer, Blob, ReadableStream, FormData or URLSearchParams");
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isReadableStream(v: unknown): v is ReadableStream {
  return typeof ReadableStream !== "undefined" && v instanceof ReadableStream;
}

// hasTag recognises built-ins by their toStringTag, so objects from another
// realm or another copy of undici count too.
function hasTag(v: unknown, tag: string): boolean {
  return typeof v === "object" && v !== null && Object.prototype.toString.call(v) === `[object ${tag}]`;
}

/** The proxy endpoint for a base URL: …/v1/proxy added unless present. */
function endpoint(raw: string): string {
  const s = raw.trim();
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new AgentKeysError("BAD_REQUEST", 0, `proxy URL ${JSON.stringify(s)} is not a full URL such as http://127.0.0.1:8787`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new AgentKeysError("BAD_REQUEST", 0, `proxy URL must start with http:// or https:// (got ${u.protocol})`);
  }
  let path = u.pathname.replace(/\/+$/, "");
  if (!path.endsWith("/v1/proxy")) path += "/v1/proxy";
  return `${u.protocol}//${u.host}${path}`;
}

interface Env {
  [name: string]: string | undefined;
}

function processEnv(): Env | undefined {
  const p = (globalThis as { process?: { env?: Env } }).process;
  return p?.env;
}

function env(name: string): string | undefined {
  const v = processEnv()?.[name]?.trim();
  return v ? v : undefined;
}

/** AGENTKEYS_API_KEY, then the first AGENTKEYS_PROXY_TOKEN_* by name. */
function envToken(): string | undefined {
  const key = env("AGENTKEYS_API_KEY");
  if (key) return key;
  const all = processEnv();
  if (!all) return undefined;
  for (const name of Object.keys(all).filter((n) => n.startsWith("AGENTKEYS_PROXY_TOKEN_")).sort()) {
    const v = env(name);
    if (v) return v;
  }
  return undefined;
}
