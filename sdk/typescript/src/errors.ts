/**
 * An answer the agentkeys proxy made itself (it carries the
 * `X-Agentkeys-Error` header), or a failure to reach the proxy at all.
 *
 * An upstream API's own 4xx/5xx is never an AgentKeysError: it comes back as
 * a normal `Response`, as with `fetch`.
 */
export class AgentKeysError extends Error {
  /**
   * The proxy's error code: `UNAUTHORIZED` (bad, revoked or missing token),
   * `BAD_REQUEST`, `NOT_FOUND` (no credential of that name),
   * `DESTINATION_NOT_ALLOWED` (host not on the credential's allowlist),
   * `PAYLOAD_TOO_LARGE`, `RATE_LIMITED`, `UPSTREAM_UNREACHABLE`,
   * `UPSTREAM_TIMEOUT`, `UNAVAILABLE`, `INTERNAL`. `UNAVAILABLE` with
   * status 0 means the proxy itself could not be reached.
   */
  readonly code: string;
  /** The HTTP status of the proxy's answer; 0 when there was no answer. */
  readonly status: number;
  /** The proxy's request id (`X-Agentkeys-Request-Id`), "" when none. */
  readonly requestId: string;

  constructor(code: string, status: number, message: string, requestId = "", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentKeysError";
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}
