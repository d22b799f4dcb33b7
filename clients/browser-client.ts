/**
 * The typed client factory for browsers: every public voxgate service over `fetch`, with
 * `@connectrpc/connect-web`. Same services and token handling as the Node factory
 * (`./voxgate-client.ts`), without its Node modules, so bundlers can pack it for a page.
 *
 * ```ts
 * import { createVoxgateClient } from "voxgate/client"; // the "browser" export condition
 * const voxgate = createVoxgateClient({ baseUrl: "https://voxgate.example.com", token });
 * for await (const chunk of voxgate.tts.streamSynthesize({ text: "Hello" })) play(chunk.data);
 * ```
 *
 * A page on another origin needs that origin in the gateway's `VOXGATE_CORS_ALLOWED_ORIGINS`.
 * Browsers speak Connect and gRPC-Web only (no gRPC: fetch exposes no HTTP trailers), and they
 * stream responses but not requests: client- and bidi-streaming calls (`prompts.putPrompt`) do not
 * work from a page.
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  bearerToken,
  checkCommonOptions,
  createVoxgateServiceClients,
  type VoxgateServiceClients,
} from "./service-clients.js";

/** Wire protocol of a browser client. */
export type VoxgateBrowserProtocol = "connect" | "grpc-web";

/** Options of {@link createVoxgateBrowserClient}. */
export interface VoxgateBrowserClientOptions {
  /**
   * URL of the gateway's public port, e.g. `https://voxgate.example.com`; a path prefix is kept.
   * A page served by the gateway itself passes `location.origin`.
   */
  baseUrl: string;
  /** Bearer token sent as `Authorization: Bearer <token>` on every call. */
  token?: string | undefined;
  /**
   * Wire protocol.
   * @default "connect"
   */
  protocol?: VoxgateBrowserProtocol | undefined;
  /**
   * Deadline of each call, in milliseconds, unless the call passes its own `timeoutMs`
   * (`timeoutMs: 0` runs without one, for watches).
   * @default 30_000
   */
  timeoutMs?: number | undefined;
  /**
   * Binary protobuf on the wire; `false` sends JSON, readable in the browser's network panel.
   * @default true
   */
  useBinaryFormat?: boolean | undefined;
  /**
   * `fetch` to use, e.g. one bound to a worker's global.
   * @default globalThis.fetch
   */
  fetch?: typeof globalThis.fetch | undefined;
  /**
   * More interceptors, run after the one that adds the token, in order.
   * @default []
   */
  interceptors?: readonly Interceptor[] | undefined;
}

/** Typed clients of every public voxgate service; `close()` exists for parity and does nothing. */
export interface VoxgateBrowserClient extends VoxgateServiceClients {
  /** No-op: `fetch` owns the connections. Present so code can call it on either factory's client. */
  close(): void;
}

/** The browser protocols {@link VoxgateBrowserClientOptions.protocol} accepts. */
export const VOXGATE_BROWSER_PROTOCOLS: readonly VoxgateBrowserProtocol[] = ["connect", "grpc-web"];

/**
 * Creates typed clients of every public voxgate service over one browser transport (see
 * {@link createVoxgateBrowserTransport}).
 *
 * @throws Error for an invalid option (URL, protocol, timeout, token).
 */
export function createVoxgateBrowserClient(
  options: VoxgateBrowserClientOptions,
): VoxgateBrowserClient {
  return { ...createVoxgateServiceClients(createVoxgateBrowserTransport(options)), close() {} };
}

/**
 * Creates a Connect or gRPC-Web transport over `fetch` with the bearer token interceptor and the
 * default deadline.
 *
 * @throws Error for a URL that is not http(s), an unknown protocol, a negative or non-finite
 * timeout, or a token that is empty or not a valid header value.
 */
export function createVoxgateBrowserTransport(options: VoxgateBrowserClientOptions): Transport {
  const { timeoutMs } = checkCommonOptions(options);
  const protocol = options.protocol ?? "connect";
  if (!VOXGATE_BROWSER_PROTOCOLS.includes(protocol)) {
    throw new Error(
      `protocol must be one of ${VOXGATE_BROWSER_PROTOCOLS.join(", ")} in a browser, got "${protocol}"`,
    );
  }
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined) interceptors.push(bearerToken(options.token));
  interceptors.push(...(options.interceptors ?? []));
  const common = {
    baseUrl: options.baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    defaultTimeoutMs: timeoutMs,
    interceptors,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  return protocol === "connect" ? createConnectTransport(common) : createGrpcWebTransport(common);
}
