import { resolve } from "node:path";
import type { Logger } from "pino";
import type { BackendState } from "../../../gen/voxgate/v1/backend_admin_pb.js";
import { CLIENT_SCOPES } from "../../../services/auth/scopes.js";
import { generateToken, hashToken } from "../../../services/auth/token-codec.js";
import { loadSettings } from "../../../services/config/settings.js";
import { gatewaySettings } from "../../../services/gateway/gateway-settings.js";
import type { Gateway } from "../../../services/gateway/index.js";
import type { CliCommand } from "../cli-command.js";
import { DEFAULT_GATEWAY_URL } from "../gateway-flags.js";
import {
  listenOrFail,
  loadOrUsageError,
  startTracingFromEnv,
  untilAborted,
} from "./server-command-support.js";

/** `voxgate start` (`npm start`): gateway plus one local CPU agent, zero config. */
export const startCommand: CliCommand = {
  name: "start",
  summary: "Run a complete local system: gateway + one CPU agent, no config needed",
  usage: `Usage: voxgate start [gateway flags]

Starts the gateway and one local agent process with the built-in espeak-ng CPU engine. Prints
the API URL and a client token. VOXGATE_PORT fixes the port (default 8080) and VOXGATE_TOKEN fixes
the token (default: a new one per run); every "voxgate gateway" setting applies too.`,
  async run(argv, io) {
    const settings = loadOrUsageError(() => loadSettings(gatewaySettings, { argv, env: io.env }));
    const [
      { createGateway, gatewayOptionsFromSettings },
      { superviseAgentProcess },
      { createLogger },
      { BackendState },
    ] = await Promise.all([
      import("../../../services/gateway/index.js"),
      import("../../../services/launcher/index.js"),
      import("../../../services/logging/index.js"),
      import("../../../gen/voxgate/v1/backend_admin_pb.js"),
    ]);
    const log = createLogger({
      level: settings.logLevel,
      format: settings.logFormat,
      service: "gateway",
    });
    const clientToken = settings.clientToken || generateToken();
    const agentToken = generateToken();
    const options = loadOrUsageError(() =>
      gatewayOptionsFromSettings({ ...settings, clientToken: "", agentToken: "" }, log, io.env),
    );
    options.tokens = [
      ...options.tokens,
      { name: "local-client", sha256: hashToken(clientToken), scopes: CLIENT_SCOPES },
      { name: "local-agent", sha256: hashToken(agentToken), scopes: ["agent"] },
    ];
    const tracing = await startTracingFromEnv(io.env, "voxgate-gateway");
    const gateway = createGateway(options);
    const tlsScheme = settings.agentTlsCertFile ? "https://" : "";
    const startAgent = (agentPort: number) =>
      superviseAgentProcess({
        // With TLS on the agent port the local agent dials it too; it trusts what any agent does
        // (VOXGATE_GATEWAY_CA_FILE, NODE_EXTRA_CA_CERTS), so the certificate must name 127.0.0.1.
        gatewayAddress: `${tlsScheme}127.0.0.1:${agentPort}`,
        token: agentToken,
        agentId: LOCAL_AGENT_ID,
        env: {
          ...io.env,
          VOXGATE_LOG_LEVEL: settings.logLevel,
          VOXGATE_LOG_FORMAT: settings.logFormat,
          // The local agent's prompt cache belongs to this system's data directory: with the
          // default (<tmp>/voxgate-agent-local-cpu) every `npm start` on the machine would share
          // one cache.
          VOXGATE_AGENT_PROMPT_CACHE_DIR:
            io.env.VOXGATE_AGENT_PROMPT_CACHE_DIR || resolve(settings.dataDir, "agent-prompts"),
        },
        log,
      });
    // The agent starts as soon as its port is bound: its engine warms up (the longest step of a
    // start) while the gateway opens its database and public port.
    let agent: ReturnType<typeof superviseAgentProcess> | undefined;
    // The banner invites a first call: it waits until the local agent can take one.
    const startFailed = new AbortController();
    const ready = localAgentReady(
      gateway.registry,
      LOCAL_AGENT_ID,
      BackendState.READY,
      io.signal ? AbortSignal.any([io.signal, startFailed.signal]) : startFailed.signal,
      log,
    );
    let addresses: Awaited<ReturnType<typeof gateway.listen>>;
    try {
      addresses = await listenOrFail(() =>
        gateway.listen({
          onAgentPort(port) {
            agent = startAgent(port);
          },
          // A new database is created once the agent is ready: initdb's CPU (or a template's
          // copy) would otherwise compete with the agent's engine start on a 2-core machine.
          openNewDatabaseAfter: ready,
        }),
      );
    } catch (err) {
      startFailed.abort();
      // A failed start exits at once: the agent, still starting, has nothing to drain.
      agent?.child?.kill("SIGKILL");
      await agent?.stop();
      throw err;
    }
    agent ??= startAgent(addresses.agentPort);
    if (await ready) {
      log.info(
        { ...addresses, tokenSource: settings.clientToken ? "VOXGATE_TOKEN" : "generated" },
        "voxgate ready",
      );
      io.stderr.write(
        banner({
          url: addresses.publicUrl,
          agentAddress: `${tlsScheme}HOST:${addresses.agentPort}`,
          agentPort: addresses.agentPort,
          token: clientToken,
          generated: !settings.clientToken,
        }),
      );
      await untilAborted(io.signal);
    }
    log.info("stopping: draining the local agent");
    await agent.stop();
    await gateway.close();
    await tracing.shutdown();
    return 0;
  },
};

/** Backend id of the agent `voxgate start` runs. */
const LOCAL_AGENT_ID = "local-cpu";

/**
 * Resolves true once backend `id` is READY in `registry` (its session said hello and its first
 * heartbeat or probe came), false if `signal` aborts first. Logs a line every 30 s while waiting,
 * so a stuck start is visible.
 */
function localAgentReady(
  registry: Gateway["registry"],
  id: string,
  readyState: BackendState,
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<boolean> {
  const isReady = () => registry.get(id)?.state === readyState;
  if (isReady()) return Promise.resolve(true);
  const waitingSince = performance.now();
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      log.warn(
        { agent: id, waitedMs: Math.round(performance.now() - waitingSince) },
        "still waiting for the local agent to be ready",
      );
    }, 30_000);
    const finish = (ready: boolean) => {
      clearInterval(timer);
      unwatch();
      signal?.removeEventListener("abort", onAbort);
      resolve(ready);
    };
    const onAbort = () => finish(false);
    const unwatch = registry.watch(() => {
      if (isReady()) finish(true);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) finish(false);
  });
}

/** What the banner shows. */
interface BannerFacts {
  url: string;
  agentAddress: string;
  agentPort: number;
  token: string;
  generated: boolean;
}

/**
 * The start banner. The client commands reach `http://127.0.0.1:8080` by default; on any other
 * port the banner says which `VOXGATE_URL` to export, so its `speak` line works as printed.
 */
function banner({ url, agentAddress, agentPort, token, generated }: BannerFacts): string {
  const urlLine = url === DEFAULT_GATEWAY_URL ? "" : `\n    export VOXGATE_URL=${url}`;
  return `
  voxgate is running
    API         ${url}   (Connect, gRPC, gRPC-Web; HTTP/1.1 and h2c)
    agent port  127.0.0.1:${agentPort}   (more GPU hosts: voxgate agent --gateway ${agentAddress})
    token       ${token}${generated ? "   (new each run; set VOXGATE_TOKEN to fix it)" : ""}

  Try it (another terminal):
    export VOXGATE_TOKEN=${token}${urlLine}
    node bin/voxgate.mjs speak "Hello from voxgate" -o hello.wav
    curl -sS ${url}/voxgate.v1.TtsService/Synthesize \\
      -H "Authorization: Bearer $VOXGATE_TOKEN" -H "Content-Type: application/json" \\
      -d '{"text":"Hello from voxgate"}' | jq -r .data | base64 -d > hello.wav

  Ctrl-C stops (the agent drains first).

`;
}
