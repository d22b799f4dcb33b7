/**
 * Deadline headers of the three RPC protocols: Connect's `connect-timeout-ms` (milliseconds) and
 * gRPC / gRPC-Web's `grpc-timeout` (up to 8 digits and a unit). connect-node refuses a deadline
 * over its `maxTimeoutMs` with INVALID_ARGUMENT; voxgate instead serves the call with the longest
 * deadline it allows, as REST and the OpenAI routes do, so a standard client with a long default
 * deadline (15 minutes and more are common) can call at all.
 */
const CONNECT_TIMEOUT = "connect-timeout-ms";
const GRPC_TIMEOUT = "grpc-timeout";

const GRPC_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * Cuts the deadline headers in `header` to `maxTimeoutMs` in place. Headers that are absent,
 * malformed (left for connect-node to refuse) or within the cap stay untouched.
 *
 * @returns whether a header was cut.
 */
export function capDeadlineHeaders(header: Headers, maxTimeoutMs: number): boolean {
  let cut = false;
  const connect = header.get(CONNECT_TIMEOUT);
  if (connect !== null && /^\d{1,10}$/.test(connect) && Number(connect) > maxTimeoutMs) {
    header.set(CONNECT_TIMEOUT, String(maxTimeoutMs));
    cut = true;
  }
  const grpc = header.get(GRPC_TIMEOUT);
  const match = grpc === null ? null : /^(\d{1,8})([HMSmun])$/.exec(grpc);
  if (match) {
    const ms = Number(match[1]) * (GRPC_UNIT_MS[match[2] ?? ""] ?? 0);
    if (ms > maxTimeoutMs) {
      header.set(GRPC_TIMEOUT, grpcTimeoutOf(maxTimeoutMs));
      cut = true;
    }
  }
  return cut;
}

/** `ms` as a `grpc-timeout` value (at most 8 digits: seconds once milliseconds do not fit). */
function grpcTimeoutOf(ms: number): string {
  const whole = Math.max(0, Math.floor(ms));
  return whole <= 99_999_999 ? `${whole}m` : `${Math.floor(whole / 1000)}S`;
}
