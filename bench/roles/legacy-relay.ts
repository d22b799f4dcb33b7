/**
 * Bench role "legacy relay": what the systems voxgate replaces did. Agents hold a WebSocket to the
 * relay; a client's `POST /tts` (`{"bytes":N,"chunkBytes":C}`) is sent to an agent as JSON, the
 * agent answers with the WHOLE audio base64-encoded in one JSON message, and the relay decodes it
 * and sends the client the whole body. Agents connect to `/agent`.
 *
 * Prints `{"msg":"ready","port":N}` on stdout once listening on 127.0.0.1, and
 * `{"msg":"agent joined"}` for each agent.
 */
import * as http from "node:http";
import { type WebSocket, WebSocketServer } from "ws";

const MAX_BODY_BYTES = 64 * 1024;
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
const agents: WebSocket[] = [];
const pending = new Map<number, (audio: Buffer | Error) => void>();
let nextId = 1;
let nextAgent = 0;

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/tts") {
    res.writeHead(404).end();
    return;
  }
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (text: string) => {
    body += text;
    if (body.length > MAX_BODY_BYTES) req.destroy();
  });
  req.on("end", () => {
    const agent = agents[nextAgent++ % Math.max(1, agents.length)];
    if (!agent) {
      res.writeHead(503).end("no agent");
      return;
    }
    const id = nextId++;
    pending.set(id, (audio) => {
      if (audio instanceof Error) {
        res.writeHead(502).end(audio.message);
        return;
      }
      res.writeHead(200, {
        "content-type": "audio/L16; rate=24000; channels=1",
        "content-length": audio.byteLength,
      });
      res.end(audio);
    });
    agent.send(JSON.stringify({ id, ...(JSON.parse(body) as object) }));
  });
});
const wss = new WebSocketServer({ server, path: "/agent", maxPayload: MAX_MESSAGE_BYTES });
wss.on("connection", (socket) => {
  agents.push(socket);
  console.log(JSON.stringify({ msg: "agent joined" }));
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id: number; audio?: string; error?: string };
    const answer = pending.get(message.id);
    pending.delete(message.id);
    answer?.(
      message.error !== undefined
        ? new Error(message.error)
        : Buffer.from(message.audio ?? "", "base64"),
    );
  });
  socket.on("close", () => agents.splice(agents.indexOf(socket), 1));
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(JSON.stringify({ msg: "ready", port }));
});
process.on("SIGTERM", () => process.exit(0));
