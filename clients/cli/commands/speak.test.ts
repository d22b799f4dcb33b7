import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type HttpBody, HttpBodySchema } from "../../../gen/google/api/httpbody_pb.js";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import { type SynthesizeSpeechRequest, TtsService } from "../../../gen/voxgate/v1/tts_pb.js";
import { encodeWavHeader, parseWav, WAV_UNKNOWN_SIZE } from "../../../services/audio/index.js";
import { type FakeGateway, startFakeGateway } from "../../testing/fake-gateway.js";
import { createTestIo } from "../../testing/test-io.js";
import { createVoxgateServiceClients } from "../../voxgate-client.js";
import { main } from "../main.js";

const TOKEN = "vxg_speak-test";
const RATE = 16_000;
/** One second of 16 kHz mono 16-bit PCM, in four chunks. */
const PCM = Uint8Array.from({ length: RATE * 2 }, (_, i) => (i * 31) & 0xff);
const CHUNKS = 4;

interface FakeTtsOptions {
  /** Throw this after sending this many PCM chunks. */
  failAfter?: { chunks: number; error: ConnectError } | undefined;
  /** After this many PCM chunks, call `onHang` and wait until the caller goes away. */
  hangAfter?: { chunks: number; onHang: () => void } | undefined;
}

/** A fake TtsService that speaks {@link PCM} whatever the text, like the gateway would. */
function fakeTts(
  requests: SynthesizeSpeechRequest[],
  options: FakeTtsOptions = {},
): Partial<ServiceImpl<typeof TtsService>> {
  const check = (req: SynthesizeSpeechRequest): void => {
    requests.push(req);
    if (req.text.length > 100) {
      throw new ConnectError("text is longer than 100 characters", Code.InvalidArgument);
    }
  };
  const pcm = (req: SynthesizeSpeechRequest): boolean => req.encoding === AudioEncoding.PCM;
  return {
    async synthesize(req, ctx) {
      check(req);
      ctx.responseHeader.set("x-voxgate-backend", "fake-gpu-1");
      const data = pcm(req)
        ? PCM
        : Buffer.concat([
            encodeWavHeader({ sampleRateHz: RATE, channels: 1, dataBytes: PCM.length }),
            PCM,
          ]);
      return { contentType: pcm(req) ? `audio/L16; rate=${RATE}; channels=1` : "audio/wav", data };
    },
    async *streamSynthesize(req, ctx) {
      check(req);
      ctx.responseHeader.set("x-voxgate-backend", "fake-gpu-1");
      ctx.responseHeader.set("x-voxgate-attempts", "2");
      const bodies: HttpBody[] = [];
      if (pcm(req)) {
        bodies.push(create(HttpBodySchema, { contentType: `audio/L16; rate=${RATE}; channels=1` }));
      } else {
        const header = encodeWavHeader({ sampleRateHz: RATE, channels: 1 });
        bodies.push(create(HttpBodySchema, { contentType: "audio/wav", data: header }));
      }
      const size = PCM.length / CHUNKS;
      for (let i = 0; i < CHUNKS; i++) {
        bodies.push(create(HttpBodySchema, { data: PCM.subarray(i * size, (i + 1) * size) }));
      }
      let sent = 0;
      for (const body of bodies) {
        if (body.data.length > 0 && body !== bodies[0]) {
          if (options.failAfter?.chunks === sent) throw options.failAfter.error;
          if (options.hangAfter?.chunks === sent) {
            options.hangAfter.onHang();
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
            return;
          }
          sent++;
        }
        yield body;
      }
    },
  };
}

let dir: string;
let gateway: FakeGateway | undefined;
let requests: SynthesizeSpeechRequest[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-speak-"));
  requests = [];
});

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function startGateway(
  options: FakeTtsOptions = {},
  httpVersion: "1.1" | "2" = "1.1",
): Promise<FakeGateway> {
  gateway = await startFakeGateway({
    token: TOKEN,
    httpVersion,
    routes: (router) => router.service(TtsService, fakeTts(requests, options)),
  });
  return gateway;
}

function envFor(fake: FakeGateway): Record<string, string> {
  return { VOXGATE_URL: fake.url, VOXGATE_TOKEN: TOKEN };
}

function sizes(file: Uint8Array): { riff: number; data: number } {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  return { riff: view.getUint32(4, true), data: view.getUint32(40, true) };
}

const SUMMARY_TAIL = String.raw`backend fake-gpu-1 \(after 2 attempts\), first byte after \d+ ms, total \d+ ms\n$`;

describe("voxgate speak", () => {
  it("streams WAV into a file and fixes the header sizes at the end", async () => {
    const fake = await startGateway();
    const out = join(dir, "hello.wav");
    const t = createTestIo({ env: envFor(fake) });
    const argv = [
      "speak",
      "Hello",
      "there",
      "-o",
      out,
      "--voice",
      "en-us",
      "--engine",
      "fake",
      "--speed",
      "1.5",
    ];

    expect(await main(argv, t.io)).toBe(0);

    const file = await readFile(out);
    expect(file).toHaveLength(44 + PCM.length);
    expect(sizes(file)).toEqual({ riff: file.length - 8, data: file.length - 44 });
    expect(file.subarray(44)).toEqual(Buffer.from(PCM));
    expect(parseWav(file)).toMatchObject({
      sampleRateHz: RATE,
      channels: 1,
      dataBytes: PCM.length,
    });
    // Only the finished file: the temporary one was renamed.
    expect(await readdir(dir)).toEqual(["hello.wav"]);
    expect(t.stdout()).toBe("");
    expect(t.stderr()).toMatch(
      new RegExp(
        `^wrote ${out}: 32,044 bytes, 1\\.00 s of audio \\(16000 Hz mono\\), ${SUMMARY_TAIL}`,
      ),
    );
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      text: "Hello there",
      voice: "en-us",
      engine: "fake",
      speed: 1.5,
      encoding: AudioEncoding.WAV,
    });
    expect(fake.calls).toEqual([
      expect.objectContaining({
        procedure: "/voxgate.v1.TtsService/StreamSynthesize",
        authorization: `Bearer ${TOKEN}`,
      }),
    ]);
  });

  it("writes raw PCM to stdout with -o - and reads the duration from the content type", async () => {
    const fake = await startGateway();
    const t = createTestIo({ env: envFor(fake), stdoutIsTTY: true });
    expect(await main(["speak", "Hi", "--format", "pcm", "-o", "-"], t.io)).toBe(0);
    expect(t.stdoutBytes()).toEqual(Buffer.from(PCM));
    expect(requests[0]).toMatchObject({ encoding: AudioEncoding.PCM, speed: 0, voice: "" });
    expect(t.stderr()).toMatch(
      new RegExp(
        `^wrote stdout: 32,000 bytes, 1\\.00 s of audio \\(16000 Hz mono\\), ${SUMMARY_TAIL}`,
      ),
    );
  });

  it("writes to stdout without -o when stdout is not a terminal, leaving the streamed header as is", async () => {
    const fake = await startGateway();
    const t = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi"], t.io)).toBe(0);
    const bytes = t.stdoutBytes();
    expect(bytes).toHaveLength(44 + PCM.length);
    expect(sizes(bytes)).toEqual({ riff: WAV_UNKNOWN_SIZE, data: WAV_UNKNOWN_SIZE });
  });

  it("refuses to write audio to a terminal without -o, exit 2, calling nothing", async () => {
    const fake = await startGateway();
    const t = createTestIo({ env: envFor(fake), stdoutIsTTY: true });
    expect(await main(["speak", "Hi"], t.io)).toBe(2);
    expect(t.stderr()).toMatch(
      /^voxgate speak: refusing to write audio to a terminal: pass -o FILE/,
    );
    expect(t.stdout()).toBe("");
    expect(fake.calls).toEqual([]);
  });

  it("fetches the whole clip with --no-stream", async () => {
    const fake = await startGateway();
    const out = join(dir, "whole.wav");
    const t = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi", "--no-stream", "-o", out], t.io)).toBe(0);
    const file = await readFile(out);
    expect(sizes(file)).toEqual({ riff: file.length - 8, data: PCM.length });
    expect(fake.calls.map((c) => c.procedure)).toEqual(["/voxgate.v1.TtsService/Synthesize"]);
    expect(t.stderr()).toMatch(
      /^wrote .*whole\.wav: 32,044 bytes, 1\.00 s of audio .*backend fake-gpu-1, first byte/,
    );
  });

  it("replaces an existing file only once the audio is complete", async () => {
    const fake = await startGateway();
    const out = join(dir, "old.wav");
    await writeFile(out, "previous take");
    expect(await main(["speak", "Hi", "-o", out], createTestIo({ env: envFor(fake) }).io)).toBe(0);
    expect(await readFile(out)).toHaveLength(44 + PCM.length);
  });

  it("speaks gRPC (over HTTP/2) too", async () => {
    const fake = await startGateway({}, "2");
    const out = join(dir, "grpc.wav");
    const t = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi", "-o", out, "--protocol", "grpc"], t.io)).toBe(0);
    expect(await readFile(out)).toHaveLength(44 + PCM.length);
    expect(fake.calls[0]?.contentType).toBe("application/grpc+proto");
  });

  it("fails mid-stream with the server's message and leaves no partial file behind", async () => {
    const error = new ConnectError(
      "backend fake-gpu-1 went away after audio started",
      Code.Unavailable,
    );
    const fake = await startGateway({ failAfter: { chunks: 2, error } });
    const out = join(dir, "partial.wav");
    await writeFile(out, "previous take");
    const t = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi", "-o", out], t.io)).toBe(1);
    expect(t.stderr()).toBe(
      `voxgate speak: the gateway at ${fake.url} is unavailable: backend fake-gpu-1 went away after audio started\n`,
    );
    expect(await readdir(dir)).toEqual(["partial.wav"]);
    expect(await readFile(out, "utf8")).toBe("previous take");
  });

  it("words a refused token, a bad request and an unreachable gateway in one line, exit 1", async () => {
    const fake = await startGateway();
    const out = join(dir, "x.wav");

    const badToken = createTestIo({ env: { ...envFor(fake), VOXGATE_TOKEN: "vxg_wrong" } });
    expect(await main(["speak", "Hi", "-o", out], badToken.io)).toBe(1);
    expect(badToken.stderr()).toBe(
      "voxgate speak: the gateway refused the token: set VOXGATE_TOKEN or pass --token\n",
    );

    const tooLong = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "x".repeat(101), "-o", out], tooLong.io)).toBe(1);
    expect(tooLong.stderr()).toBe("voxgate speak: text is longer than 100 characters\n");

    await fake.close();
    const down = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi", "-o", out], down.io)).toBe(1);
    expect(down.stderr()).toBe(
      `voxgate speak: cannot reach the gateway at ${fake.url} — is it running? (npm start)\n`,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it("takes --url and --token over the environment", async () => {
    const fake = await startGateway();
    const t = createTestIo({
      env: { VOXGATE_URL: "http://127.0.0.1:1", VOXGATE_TOKEN: "vxg_env" },
    });
    const argv = ["speak", "Hi", "-o", "-", "--url", fake.url, "--token", TOKEN];
    expect(await main(argv, t.io)).toBe(0);
    expect(fake.calls[0]?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it("fails before calling when the output cannot be written", async () => {
    const fake = await startGateway();
    const t = createTestIo({ env: envFor(fake) });
    const out = join(dir, "missing", "x.wav");
    expect(await main(["speak", "Hi", "-o", out], t.io)).toBe(1);
    expect(t.stderr()).toBe(`voxgate speak: cannot write ${out}: its directory does not exist\n`);
    expect(fake.calls).toEqual([]);

    const isDir = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi", "-o", dir], isDir.io)).toBe(1);
    expect(isDir.stderr()).toBe(`voxgate speak: cannot write ${dir}: it is a directory\n`);
  });

  it("writes to a non-regular file such as /dev/null in place", async () => {
    const fake = await startGateway();
    const t = createTestIo({ env: envFor(fake) });
    expect(await main(["speak", "Hi", "-o", "/dev/null"], t.io)).toBe(0);
    expect(t.stderr()).toMatch(/^wrote \/dev\/null: 32,044 bytes/);
  });

  it("stops when interrupted, removes the partial file and exits 130", async () => {
    let hung!: () => void;
    const hanging = new Promise<void>((resolve) => {
      hung = resolve;
    });
    const fake = await startGateway({ hangAfter: { chunks: 1, onHang: () => hung() } });
    const interrupt = new AbortController();
    const out = join(dir, "stopped.wav");
    const t = createTestIo({ env: envFor(fake), signal: interrupt.signal });
    const exit = main(["speak", "Hi", "-o", out], t.io);
    await hanging;
    interrupt.abort();
    expect(await exit).toBe(130);
    expect(t.stderr()).toBe("voxgate speak: interrupted\n");
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    [["speak"], /give the text to speak/],
    [["speak", "  "], /give the text to speak/],
    [["speak", "Hi", "--format", "flac"], /--format must be one of wav, pcm, mp3, got "flac"/],
    [["speak", "Hi", "--speed", "9"], /--speed must be a number from 0.25 to 4, got "9"/],
    [["speak", "Hi", "--speed", "fast"], /--speed must be a number/],
    [["speak", "Hi", "--stream", "--no-stream"], /contradict/],
    [["speak", "Hi", "--protocol", "soap"], /--protocol must be one of connect, grpc, grpc-web/],
    [["speak", "Hi", "--timeout=-1"], /--timeout must be a number from 0 to 86400, got "-1"/],
    [["speak", "Hi", "--url", "ftp://x"], /--url "ftp:\/\/x" is not an http/],
    [["speak", "Hi", "--voise", "en"], /Unknown option '--voise'/],
  ])("rejects %j with exit 2 before calling", async (argv, message) => {
    const fake = await startGateway();
    const t = createTestIo({ env: envFor(fake) });
    expect(await main(argv, t.io)).toBe(2);
    expect(t.stderr()).toMatch(message);
    expect(t.stderr()).toContain('Run "voxgate speak --help" for usage.');
    expect(fake.calls).toEqual([]);
  });

  it("runs against any transport through CliIo.createClient", async () => {
    const transport = createRouterTransport((router) =>
      router.service(TtsService, fakeTts(requests)),
    );
    let closed = 0;
    const t = createTestIo({
      createClient: (options) => {
        expect(options).toMatchObject({
          baseUrl: "http://gateway.test",
          token: "vxg_mem",
          timeoutMs: 5_000,
        });
        return { ...createVoxgateServiceClients(transport), close: () => closed++ };
      },
    });
    const argv = [
      "speak",
      "Hi",
      "-o",
      "-",
      "--url",
      "http://gateway.test",
      "--token",
      "vxg_mem",
      "--timeout",
      "5",
    ];
    expect(await main(argv, t.io)).toBe(0);
    expect(t.stdoutBytes()).toHaveLength(44 + PCM.length);
    expect(closed).toBe(1);
  });
});
