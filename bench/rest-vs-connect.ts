/**
 * REST/JSON vs Connect benchmark: what the transcoder adds to a call. One real stack (`voxgate
 * start`: gateway plus a spawned CPU agent, real espeak-ng), loopback, HTTP/1.1 keep-alive on both
 * sides, calls interleaved (REST, Connect, REST, …) so both see the same machine load:
 * - a small request: `GET /v1/voices?page_size=1` vs Connect `VoiceService/ListVoices`, once
 *   with the Connect client and once as a bare Connect-JSON POST from the same raw HTTP client the
 *   REST side uses (so only the server paths differ);
 * - a short whole clip: `POST /v1/tts` vs Connect `TtsService/Synthesize`;
 * - the first audio byte of a stream: `POST /v1/speech:stream` vs Connect
 *   `TtsService/StreamSynthesize`.
 *
 *   node --import tsx bench/rest-vs-connect.ts [--reps N] [--quick]
 *
 * Prints a table and one JSON line of figures (p50/p99 in ms).
 */
import * as http from "node:http";
import { parseArgs } from "node:util";
import { createVoxgateClient } from "../clients/voxgate-client.js";
import { generateToken } from "../services/auth/token-codec.js";
import { spawnVoxgate } from "../test/helpers/voxgate-process.js";

const { values } = parseArgs({
  options: { reps: { type: "string" }, quick: { type: "boolean" } },
});
const smallReps = Number(values.reps ?? (values.quick ? 100 : 500));
const audioReps = values.quick ? 15 : 50;
const WARMUP = 10;
const SHORT_TEXT = "Hello from voxgate.";

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const token = generateToken();
const stack = spawnVoxgate(["start"], {
  VOXGATE_PORT: "0",
  VOXGATE_AGENT_PORT: "0",
  VOXGATE_TOKEN: token,
  // Per-call info logs would measure the logger, on both paths alike; keep them out.
  VOXGATE_LOG_LEVEL: "warn",
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One REST call; resolves with the time to the first body byte and to the end, in ms, after
 * checking the status.
 */
function rest(
  method: string,
  path: string,
  body?: string,
): Promise<{ firstMs: number; totalMs: number }> {
  return new Promise((resolve, reject) => {
    const sent = performance.now();
    const req = http.request(
      `${url}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined
            ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
            : {}),
        },
      },
      (res) => {
        let firstMs = 0;
        res.on("data", () => {
          if (firstMs === 0) firstMs = performance.now() - sent;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`${method} ${path}: ${res.statusCode}`));
          else resolve({ firstMs, totalMs: performance.now() - sent });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

let url = "";
const rows: Array<{ name: string; rest: number[]; connect: number[] }> = [];
try {
  // "voxgate ready" is logged at info; wait for the agent by polling instead.
  url = await new Promise<string>((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const port = /http:\/\/127\.0\.0\.1:(\d+)/.exec(stack.stderr())?.[1];
      if (port) {
        clearInterval(poll);
        resolve(`http://127.0.0.1:${port}`);
      } else if (Date.now() - started > 60_000) {
        clearInterval(poll);
        reject(new Error(`no URL printed; stderr:\n${stack.stderr()}`));
      }
    }, 50);
  });
  const client = createVoxgateClient({ baseUrl: url, token });
  try {
    // The agent is ready once a voice is listed.
    for (let i = 0; ; i++) {
      if ((await client.voices.listVoices({ pageSize: 1 })).voices.length > 0) break;
      if (i > 600) throw new Error("the agent never came up");
      await new Promise((r) => setTimeout(r, 100));
    }

    const measure = async (
      name: string,
      reps: number,
      viaRest: () => Promise<number>,
      viaConnect: () => Promise<number>,
    ) => {
      const row = { name, rest: [] as number[], connect: [] as number[] };
      for (let i = 0; i < reps + WARMUP; i++) {
        const r = await viaRest();
        const c = await viaConnect();
        if (i >= WARMUP) {
          row.rest.push(r);
          row.connect.push(c);
        }
      }
      rows.push(row);
    };

    await measure(
      "small request (ListVoices, page_size=1)",
      smallReps,
      async () => (await rest("GET", "/v1/voices?page_size=1")).totalMs,
      async () => {
        const sent = performance.now();
        await client.voices.listVoices({ pageSize: 1 });
        return performance.now() - sent;
      },
    );
    await measure(
      "small request, raw HTTP client on both sides",
      smallReps,
      async () => (await rest("GET", "/v1/voices?page_size=1")).totalMs,
      async () =>
        (await rest("POST", "/voxgate.v1.VoiceService/ListVoices", JSON.stringify({ pageSize: 1 })))
          .totalMs,
    );
    await measure(
      `whole clip (Synthesize "${SHORT_TEXT}")`,
      audioReps,
      async () => (await rest("POST", "/v1/tts", JSON.stringify({ text: SHORT_TEXT }))).totalMs,
      async () => {
        const sent = performance.now();
        await client.tts.synthesize({ text: SHORT_TEXT });
        return performance.now() - sent;
      },
    );
    await measure(
      "first audio byte (StreamSynthesize)",
      audioReps,
      async () =>
        (await rest("POST", "/v1/speech:stream", JSON.stringify({ text: SHORT_TEXT }))).firstMs,
      async () => {
        const sent = performance.now();
        let firstMs = 0;
        for await (const chunk of client.tts.streamSynthesize({ text: SHORT_TEXT })) {
          if (firstMs === 0 && chunk.data.byteLength > 0) firstMs = performance.now() - sent;
        }
        return firstMs;
      },
    );
  } finally {
    client.close();
  }
} finally {
  agent.destroy();
  await stack.stop("SIGTERM");
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`.padStart(10);
console.log(
  `\nvoxgate REST vs Connect — node ${process.version}, ${new Date().toISOString()}, ` +
    `HTTP/1.1 keep-alive, loopback`,
);
console.log(
  `\n  ${"call".padEnd(44)}${"REST p50".padStart(10)}${"p99".padStart(10)}` +
    `${"Connect p50".padStart(13)}${"p99".padStart(10)}${"Δp50".padStart(10)}   n`,
);
for (const row of rows) {
  const r50 = percentile(row.rest, 50);
  const c50 = percentile(row.connect, 50);
  console.log(
    `  ${row.name.padEnd(44)}${fmt(r50)}${fmt(percentile(row.rest, 99))}   ${fmt(c50)}` +
      `${fmt(percentile(row.connect, 99))}${fmt(r50 - c50)}   ${row.rest.length}`,
  );
}
const round = (ms: number) => Math.round(ms * 100) / 100;
const figures = {
  bench: "rest-vs-connect",
  node: process.version,
  rows: rows.map((row) => ({
    name: row.name,
    n: row.rest.length,
    restP50Ms: round(percentile(row.rest, 50)),
    restP99Ms: round(percentile(row.rest, 99)),
    connectP50Ms: round(percentile(row.connect, 50)),
    connectP99Ms: round(percentile(row.connect, 99)),
  })),
};
console.log(`\n${JSON.stringify(figures)}`);
