import { describeSettings, loadSettings } from "../../../services/config/settings.js";
import { gatewaySettings } from "../../../services/gateway/gateway-settings.js";
import type { CliCommand } from "../cli-command.js";
import { CliError } from "../cli-errors.js";
import {
  listenOrFail,
  loadOrUsageError,
  startTracingFromEnv,
  untilAborted,
} from "./server-command-support.js";

/** `voxgate gateway`: runs the public API port and the agent port until stopped. */
export const gatewayCommand: CliCommand = {
  name: "gateway",
  summary: "Run the gateway: the public API port and the agent port",
  usage: `Usage: voxgate gateway [--config FILE] [flags]

Serves Connect, gRPC and gRPC-Web (HTTP/1.1 and h2c) on the public port and the agent link (gRPC)
on the agent port. Logs are JSON lines on standard output. SIGTERM/SIGINT drain: readiness off,
listeners closed, agents sent on, running calls and job segments finish (--drain-timeout-ms), then
exit 0; a second signal or the timeout cuts what still runs, logs it and exits 1.
With certificate files set, either port serves TLS; the files are reloaded when they change and on
SIGHUP (new connections use them; established streams keep theirs). Tokens (the config file's
"tokens", --tokens-file) are reloaded the same way: a removed client token is refused on its next
call, an agent whose token was removed is disconnected at once; an invalid file is logged and the
previous tokens kept.

Settings: a flag beats its environment variable, which beats the config file (JSON, --config or
VOXGATE_CONFIG), which beats the default.

${describeSettings(gatewaySettings)}

Example config file:
  { "port": 8080, "tokens": [{ "name": "cloud", "sha256": "<hex>", "scopes": ["tts", "voices"] }] }
Make tokens with: voxgate token create --scopes tts,voices`,
  async run(argv, io) {
    const settings = loadOrUsageError(() => loadSettings(gatewaySettings, { argv, env: io.env }));
    // Loaded here, not at the top: other commands (and --help) should not pay for the server.
    const {
      createGateway,
      createTokenReloader,
      gatewayOptionsFromSettings,
      gatewayTokensFromSettings,
    } = await import("../../../services/gateway/index.js");
    const { createLogger } = await import("../../../services/logging/index.js");
    const log = createLogger({
      level: settings.logLevel,
      format: settings.logFormat,
      service: "gateway",
    });
    const options = loadOrUsageError(() => gatewayOptionsFromSettings(settings, log, io.env));
    const tracing = await startTracingFromEnv(io.env, "voxgate-gateway");
    if (tracing.enabled) log.info("tracing: exporting spans (OTEL_* variables)");
    if (!options.tokens.some((t) => !t.scopes.includes("agent"))) {
      log.warn("no client tokens configured: every call except health will be refused");
    }
    if (!options.tokens.some((t) => t.scopes.includes("agent"))) {
      log.warn("no agent tokens configured: no agent can connect");
    }
    const { isTlsFilesError } = await import("../../../services/tls/index.js");
    let gateway: ReturnType<typeof createGateway>;
    try {
      gateway = createGateway(options);
    } catch (err) {
      if (isTlsFilesError(err)) throw new CliError(err.message);
      throw err;
    }
    // Tokens are read again from the same sources (flags, environment, config file, tokens file)
    // with the same precedence; only the tokens change, other settings need a restart.
    const tokenReloader = createTokenReloader({
      files: [settings.config, settings.tokensFile].filter(Boolean),
      pollIntervalMs: settings.tokensPollIntervalMs,
      load: () => gatewayTokensFromSettings(loadSettings(gatewaySettings, { argv, env: io.env })),
      apply: (tokens) => gateway.reloadTokens(tokens),
      log,
    });
    // SIGHUP reloads certificates and tokens (their files are also polled); without a listener it
    // would end the process.
    const onHangup = () => {
      log.info("SIGHUP: reloading certificates and tokens");
      void gateway.reloadCertificates();
      tokenReloader.reload("SIGHUP");
    };
    process.on("SIGHUP", onHangup);
    try {
      const addresses = await listenOrFail(() => gateway.listen());
      log.info(addresses, "gateway ready");
      await untilAborted(io.signal);
      const reason = (io.signal?.reason as Error | undefined)?.message ?? "stop";
      const onHardStop = () => log.warn("stopped again: cutting the drain short");
      io.hardStop?.addEventListener("abort", onHardStop, { once: true });
      // Running calls and job segments finish (up to the drain timeout); agents are sent on.
      const drain = await gateway.drain(reason, io.hardStop ? { signal: io.hardStop } : {});
      io.hardStop?.removeEventListener("abort", onHardStop);
      await gateway.close(drain.drained ? 2000 : 0);
      return drain.drained ? 0 : 1;
    } finally {
      process.off("SIGHUP", onHangup);
      tokenReloader.close();
      // Last: the spans of the final calls leave before the process does.
      await tracing.shutdown();
    }
  },
};
