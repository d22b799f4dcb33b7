import {
  agentSettings,
  defaultAgentId,
  defaultPromptCacheDir,
} from "../../../services/agent/agent-settings.js";
import { describeSettings, loadSettings } from "../../../services/config/settings.js";
import type { ClientTlsOptions } from "../../../services/tls/grpc-channel-credentials.js";
import { VOXGATE_VERSION } from "../../../services/version.js";
import type { CliCommand } from "../cli-command.js";
import { CliError, CliUsageError } from "../cli-errors.js";
import { loadOrUsageError, startTracingFromEnv } from "./server-command-support.js";

/** `voxgate agent`: dials a gateway and serves its engines until drained. */
export const agentCommand: CliCommand = {
  name: "agent",
  summary: "Run an agent: dial a gateway and serve this host's TTS engines",
  usage: `Usage: voxgate agent --gateway https://HOST:PORT [--token TOKEN] [flags]

Dials OUT to the gateway's agent port (no open port needed on this host), says hello with its
engines, voices and slots, heartbeats its load, and runs the calls the gateway offers. Reconnects
with capped exponential backoff and jitter. An https:// gateway is dialled over TLS, trusting the
system store, NODE_EXTRA_CA_CERTS and --ca-file; http:// or a bare HOST:PORT is cleartext. SIGTERM/SIGINT drain: running calls finish, no new
work is taken; a second signal exits at once.

Engines (--engine): espeak is the built-in espeak-ng CPU engine (optional GPL-3.0 dependency
"espeak-ng"). openai-http and qwen3-http forward to a model server on this host (an
OpenAI-compatible /v1/audio/speech server, or the Qwen3-TTS local server) at --engine-url;
openai-llm forwards text generation to an OpenAI-compatible chat server (vLLM, llama.cpp, Ollama).

${describeSettings(agentSettings)}`,
  async run(argv, io) {
    const settings = loadOrUsageError(() => loadSettings(agentSettings, { argv, env: io.env }));
    if (!settings.token) {
      throw new CliUsageError(
        "an agent token is required: set VOXGATE_AGENT_TOKEN or pass --token",
      );
    }
    const tls = await checkGatewayTls(settings);
    // Loaded here, not at the top: other commands (and --help) should not pay for the agent. The
    // engine's workers start first so they warm up while the rest of the agent loads.
    const [{ createEngines }, { isEngineUnavailableError }, { createLogger }] = await Promise.all([
      import("../../../services/engines/engine-factory.js"),
      import("../../../services/engines/engine-errors.js"),
      import("../../../services/logging/index.js"),
    ]);
    // The logger comes first so the engine's start-up (workers, voice discovery) is logged too.
    const log = createLogger({
      level: settings.logLevel,
      format: settings.logFormat,
      service: "agent",
    });
    const tracing = await startTracingFromEnv(io.env, "voxgate-agent");
    if (tracing.enabled) log.info("tracing: exporting spans (OTEL_* variables)");
    const engineReady = createEngines({
      log,
      kind: settings.engine,
      workers: settings.slots,
      llmModels: settings.engineLlmModels,
      // Read only by --engine openai-http and qwen3-http.
      modelServer: {
        url: settings.engineUrl,
        apiKey: settings.engineApiKey,
        model: settings.engineModel,
        modelSize: settings.engineModelSize,
        voices: settings.engineVoices,
        responseFormat: settings.engineResponseFormat,
        sampleRateHz: settings.engineSampleRateHz,
        timeoutMs: settings.engineTimeoutMs,
        discoveryTimeoutMs: settings.engineDiscoveryTimeoutMs,
        maxResponseBytes: settings.engineMaxResponseBytes,
        promptsDir: settings.enginePromptsDir,
      },
    });
    engineReady.catch(() => {}); // handled below, once the other modules are in
    const [
      { AgentFleet },
      { agentLinkOptionsFromSettings },
      { createPromptCache },
      { createEngineHost, describeEngines, engineHostLimitsFromSettings },
    ] = await Promise.all([
      import("../../../services/agent/agent-fleet.js"),
      import("../../../services/agent/agent.js"),
      import("../../../services/agent/prompt-cache.js"),
      import("../../../services/engine-host/index.js"),
    ]);
    const engines = await engineReady.catch((err: unknown) => {
      if (isEngineUnavailableError(err)) throw new CliError(err.message);
      throw err;
    });
    const { createGpuSampler } = await import("../../../services/agent/gpu-sampler.js");
    // GPU figures for heartbeats: the node's own report (tinybox-http), else nvidia-smi on PATH.
    const gpus = createGpuSampler({
      engines,
      intervalMs: settings.gpuPollMs,
      path: io.env.PATH ?? "",
      log,
    });
    const host = createEngineHost({
      engines,
      slots: settings.slots,
      ...engineHostLimitsFromSettings(settings),
      gpuReport: gpus.latest,
    });
    const agentId = settings.id || defaultAgentId();
    const promptCacheDir = settings.promptCacheDir || defaultPromptCacheDir(agentId);
    log.info({ promptCacheDir, maxBytes: settings.promptCacheBytes }, "prompt cache");
    const promptCache = createPromptCache({
      dir: promptCacheDir,
      maxBytes: settings.promptCacheBytes,
      log,
    });
    // One session per gateway replica (a comma list, or a name resolving to several addresses).
    const agent = new AgentFleet({
      gateways: settings.gateway,
      resolveIntervalMs: settings.gatewayResolveMs,
      ...(tls ? { tls } : {}),
      token: settings.token,
      agentId,
      promptCache,
      version: VOXGATE_VERSION,
      host,
      capabilities: describeEngines(engines, settings.slots),
      ...agentLinkOptionsFromSettings(settings),
      // More standby streams than calls the agent can run at once would only sit idle.
      standbyStreams: Math.min(settings.standbyStreams, settings.slots),
      backoff: { maxDelayMs: settings.reconnectMaxMs },
      log,
    });
    const onStop = () =>
      void agent.drain(String((io.signal?.reason as Error | undefined)?.message ?? "stop"));
    io.signal?.addEventListener("abort", onStop, { once: true });
    try {
      await agent.run();
    } finally {
      io.signal?.removeEventListener("abort", onStop);
      gpus.stop();
      await Promise.all(engines.map((engine) => engine.close()));
      await tracing.shutdown();
    }
    return 0;
  },
};

/**
 * The agent's TLS options, checked before anything starts: TLS files with a cleartext gateway
 * address are refused (they would be silently ignored), and so are files that cannot be read.
 */
async function checkGatewayTls(
  settings: Pick<
    ReturnType<typeof loadSettings<typeof agentSettings>>,
    "gateway" | "caFile" | "clientCertFile" | "clientKeyFile"
  >,
): Promise<ClientTlsOptions | undefined> {
  const [{ parseGatewayAddress }, { createClientChannelCredentials }] = await Promise.all([
    import("../../../services/agent/gateway-address.js"),
    import("../../../services/tls/grpc-channel-credentials.js"),
  ]);
  const files = {
    caFile: settings.caFile || undefined,
    clientCertFile: settings.clientCertFile || undefined,
    clientKeyFile: settings.clientKeyFile || undefined,
  };
  const anyFile = Object.values(files).some(Boolean);
  // Any https:// entry of the list (a fleet may mix them) needs the files to be usable.
  const anyTls = settings.gateway.split(",").some((entry) => parseGatewayAddress(entry.trim()).tls);
  if (!anyTls) {
    if (anyFile) {
      throw new CliUsageError(
        `--ca-file, --client-cert-file and --client-key-file need an https:// gateway; --gateway is "${settings.gateway}" (cleartext)`,
      );
    }
    return undefined;
  }
  try {
    createClientChannelCredentials(files);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  return files;
}
