/**
 * What every command that calls the gateway shares: the connection flags, their resolution from
 * flags and environment, and running a call with a client that is always closed and whose errors
 * come out as one-line messages.
 */
import { readFileSync } from "node:fs";
import type { CallOptions } from "@connectrpc/connect";
import {
  createVoxgateClient,
  VOXGATE_PROTOCOLS,
  type VoxgateClient,
  type VoxgateClientOptions,
} from "../voxgate-client.js";
import type { CliIo } from "./cli-command.js";
import {
  CliError,
  CliUsageError,
  describeError,
  isCliError,
  isCliUsageError,
} from "./cli-errors.js";
import { parseChoiceFlag, parseNumberFlag } from "./parse-flags.js";

/** Gateway URL used when neither `--url` nor `VOXGATE_URL` is given: `npm start`'s public port. */
export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080";

/** Default per-call deadline of CLI commands, in seconds. */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** `util.parseArgs` options of the gateway flags; spread them into a command's options. */
export const GATEWAY_FLAGS = {
  url: { type: "string" },
  token: { type: "string" },
  protocol: { type: "string" },
  timeout: { type: "string" },
  "ca-file": { type: "string" },
} as const;

/** Help text of {@link GATEWAY_FLAGS}, for the end of a command's usage. */
export const GATEWAY_FLAGS_HELP = `Gateway flags:
  --url URL          gateway URL (env VOXGATE_URL; default ${DEFAULT_GATEWAY_URL})
  --token TOKEN      bearer token (env VOXGATE_TOKEN; prefer the variable, flags show in ps)
  --protocol NAME    connect, grpc or grpc-web (default connect)
  --timeout SECONDS  deadline of each call, 0 for none (default ${DEFAULT_TIMEOUT_SECONDS})
  --ca-file FILE     more CA certificates (PEM) to trust for an https:// URL (env VOXGATE_CA_FILE)`;

/** Values of {@link GATEWAY_FLAGS} as `util.parseArgs` returns them. */
export interface GatewayFlagValues {
  url?: string | undefined;
  token?: string | undefined;
  protocol?: string | undefined;
  timeout?: string | undefined;
  "ca-file"?: string | undefined;
}

/**
 * Resolves client options from the gateway flags, falling back to `VOXGATE_URL` and
 * `VOXGATE_TOKEN` in `env` (flags win; an empty variable counts as unset).
 *
 * @throws CliUsageError for a URL that is not http(s), an unknown protocol or a bad timeout.
 */
export function resolveGatewayOptions(
  values: GatewayFlagValues,
  env: CliIo["env"],
): VoxgateClientOptions {
  const baseUrl = values.url ?? (nonEmpty(env.VOXGATE_URL) || DEFAULT_GATEWAY_URL);
  const source = values.url !== undefined ? "--url" : "VOXGATE_URL";
  if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) {
    throw new CliUsageError(`${source} "${baseUrl}" is not an http:// or https:// URL`);
  }
  const token = values.token ?? nonEmpty(env.VOXGATE_TOKEN);
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new CliUsageError(
      `the token (${values.token !== undefined ? "--token" : "VOXGATE_TOKEN"}) must be printable ASCII without spaces`,
    );
  }
  const protocol = parseChoiceFlag("protocol", values.protocol ?? "connect", VOXGATE_PROTOCOLS);
  const timeoutSeconds =
    values.timeout === undefined
      ? DEFAULT_TIMEOUT_SECONDS
      : parseNumberFlag("timeout", values.timeout, 0, 86_400);
  const caFile = values["ca-file"] ?? nonEmpty(env.VOXGATE_CA_FILE);
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new CliUsageError(
        `${values["ca-file"] !== undefined ? "--ca-file" : "VOXGATE_CA_FILE"} ${caFile}: ${(err as Error).message}`,
      );
    }
  }
  return {
    baseUrl,
    token,
    protocol,
    timeoutMs: Math.round(timeoutSeconds * 1000),
    ...(ca ? { ca } : {}),
  };
}

/**
 * Runs `call` with a client made by `io.createClient` (default {@link createVoxgateClient}) and
 * closes it afterwards, whatever happens. Errors other than CLI errors become a {@link CliError}
 * worded by {@link describeError} (keeping the original as `cause`); `scope` names the token scope
 * the call needs, for the PERMISSION_DENIED hint.
 */
export async function withGatewayClient<T>(
  io: CliIo,
  options: VoxgateClientOptions,
  scope: string | undefined,
  call: (client: VoxgateClient) => Promise<T>,
): Promise<T> {
  const client = (io.createClient ?? createVoxgateClient)(options);
  try {
    return await call(client);
  } catch (error) {
    if (isCliError(error) || isCliUsageError(error)) throw error;
    const message = describeError(error, {
      baseUrl: options.baseUrl,
      scope,
      timeoutMs: options.timeoutMs,
    });
    throw new CliError(message, { cause: error });
  } finally {
    client.close();
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** Call options that stop the call when the command is interrupted ({@link CliIo.signal}). */
export function callOptions(io: CliIo): CallOptions {
  return io.signal === undefined ? {} : { signal: io.signal };
}
