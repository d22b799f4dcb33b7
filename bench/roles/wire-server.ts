/**
 * Bench role "wire": a bare HTTP/2 server that answers `GET /?bytes=N&chunk=C` with N bytes
 * written in chunks of C, honouring backpressure. Nothing but Node's HTTP/2 stack between two
 * processes: the practical ceiling of streamed throughput on this machine.
 *
 * Prints `{"msg":"ready","port":N}` on stdout once listening on 127.0.0.1.
 */
import { once } from "node:events";
import * as http2 from "node:http2";

const WINDOW_BYTES = 8 * 1024 * 1024;
const MAX_BYTES = 256 * 1024 * 1024;
const server = http2.createServer({
  settings: { initialWindowSize: WINDOW_BYTES, maxConcurrentStreams: 4096 },
});
server.on("session", (session) => {
  session.once("localSettings", () => session.setLocalWindowSize(WINDOW_BYTES));
});
server.on("stream", (stream, headers) => {
  const query = new URL(String(headers[":path"]), "http://wire").searchParams;
  const bytes = Math.min(MAX_BYTES, Number(query.get("bytes") ?? 0));
  const chunkBytes = Math.max(1, Math.min(1024 * 1024, Number(query.get("chunk") ?? 16_384)));
  const chunk = Buffer.alloc(chunkBytes, 0x5a);
  stream.respond({ ":status": 200, "content-type": "application/octet-stream" });
  void (async () => {
    for (let sent = 0; sent < bytes; sent += chunkBytes) {
      if (stream.destroyed) return;
      const piece = sent + chunkBytes <= bytes ? chunk : chunk.subarray(0, bytes - sent);
      if (!stream.write(piece)) await once(stream, "drain");
    }
    stream.end();
  })().catch(() => stream.destroy());
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(JSON.stringify({ msg: "ready", port }));
});
process.on("SIGTERM", () => process.exit(0));
