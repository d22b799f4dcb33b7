/**
 * Bench role "direct": the echo engine host served on a plain h2c port, in its own process, so a
 * client can call GPUBackendService with no gateway in between. It is what the agent runs, minus
 * the agent link: the baseline the gateway's added cost is measured against.
 *
 * Prints `{"msg":"ready","port":N}` on stdout once listening on 127.0.0.1 (port 0 = any free).
 */
import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { GPUBackendService } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { settingDefaults } from "../../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../../services/engine-host/engine-host-handler.js";
import { createEngineHost } from "../../services/engine-host/index.js";
import { createEchoEngine } from "../../services/engines/echo/index.js";

const WINDOW_BYTES = 8 * 1024 * 1024;
const host = createEngineHost({
  ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
  engines: [createEchoEngine()],
  slots: 4096,
});
const handler = connectNodeAdapter({
  routes(router) {
    router.service(GPUBackendService, host.handler);
  },
  // Same as the gateway: audio is dense, compressing it only costs CPU.
  acceptCompression: [],
});
const server = http2.createServer(
  { settings: { initialWindowSize: WINDOW_BYTES, maxConcurrentStreams: 4096 } },
  handler,
);
server.on("session", (session) => {
  session.once("localSettings", () => session.setLocalWindowSize(WINDOW_BYTES));
});
server.listen(Number(process.env.BENCH_PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(JSON.stringify({ msg: "ready", port }));
});
process.on("SIGTERM", () => process.exit(0));
