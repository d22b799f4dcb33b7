/**
 * Bench role "legacy agent": the GPU side of the old design. Runs the same echo engine as the
 * voxgate agent, waits for the whole answer, and sends it to the relay (`BENCH_RELAY_URL`, a
 * `ws://…/agent` URL) base64-encoded in one JSON message.
 *
 * Prints `{"msg":"connected"}` once the WebSocket is open.
 */
import { WebSocket } from "ws";
import { createEchoEngine, ECHO_PARAMS } from "../../services/engines/echo/index.js";

const engine = createEchoEngine();
const socket = new WebSocket(String(process.env.BENCH_RELAY_URL), {
  maxPayload: 256 * 1024 * 1024,
});
socket.on("open", () => console.log(JSON.stringify({ msg: "connected" })));
socket.on("message", (data) => {
  const job = JSON.parse(String(data)) as { id: number; bytes: number; chunkBytes: number };
  void (async () => {
    const chunks: Uint8Array[] = [];
    const params = {
      [ECHO_PARAMS.bytes]: String(job.bytes),
      [ECHO_PARAMS.chunkBytes]: String(job.chunkBytes),
    };
    const request = { text: "legacy", voiceId: "", speed: 1, instructions: "", params };
    for await (const chunk of engine.synthesize(request, new AbortController().signal)) {
      chunks.push(chunk.pcm);
    }
    const audio = Buffer.concat(chunks).toString("base64");
    socket.send(JSON.stringify({ id: job.id, audio }));
  })().catch((err: unknown) => socket.send(JSON.stringify({ id: job.id, error: String(err) })));
});
socket.on("close", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
