/**
 * The `voxgate` executable as users run it: a real `node bin/voxgate.mjs` process, started from
 * another working directory, against a fake gateway on a real socket.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HttpBodySchema } from "../../gen/google/api/httpbody_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { encodeWavHeader } from "../../services/audio/index.js";
import { type FakeGateway, startFakeGateway } from "../testing/fake-gateway.js";

const BIN = fileURLToPath(new URL("../../bin/voxgate.mjs", import.meta.url));
const TOKEN = "vxg_bin-test";
const PCM = new Uint8Array(8000);

let dir: string;
let gateway: FakeGateway | undefined;
let child: ChildProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-bin-"));
});

afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  child = undefined;
  await gateway?.close();
  gateway = undefined;
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `node bin/voxgate.mjs ...args` in `dir` with only the given environment. */
function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  child = spawn(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return child;
}

async function finish(proc: ChildProcess): Promise<Run> {
  let stdout = "";
  let stderr = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(proc, "exit")) as [number | null];
  return { code, stdout, stderr };
}

describe("bin/voxgate.mjs", () => {
  it("answers --help, --version and unknown commands from any working directory", async () => {
    const help = await finish(start(["--help"]));
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toContain("Usage: voxgate <command> [flags]");

    const version = await finish(start(["--version"]));
    const pkg = JSON.parse(
      await readFile(new URL("../../package.json", import.meta.url), "utf8"),
    ) as { version: string };
    expect(version).toMatchObject({ code: 0, stdout: `voxgate ${pkg.version}\n` });

    const unknown = await finish(start(["frobnicate"]));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^voxgate: unknown command "frobnicate"/);
  });

  it("speaks into a file, and on SIGINT stops, removes the partial file and exits 130", async () => {
    let hang = false;
    let hung!: () => void;
    const hanging = new Promise<void>((resolve) => {
      hung = resolve;
    });
    gateway = await startFakeGateway({
      token: TOKEN,
      routes: (router) =>
        router.service(TtsService, {
          async *streamSynthesize(_req, ctx) {
            ctx.responseHeader.set("x-voxgate-backend", "fake-gpu-1");
            yield create(HttpBodySchema, {
              contentType: "audio/wav",
              data: encodeWavHeader({ sampleRateHz: 8000, channels: 1 }),
            });
            yield create(HttpBodySchema, { data: PCM });
            if (hang) {
              hung();
              await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
              return;
            }
            yield create(HttpBodySchema, { data: PCM });
          },
        }),
    });
    const env = { VOXGATE_URL: gateway.url, VOXGATE_TOKEN: TOKEN };

    const done = await finish(start(["speak", "Hello", "-o", "out.wav"], env));
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/^wrote out\.wav: 16,044 bytes, 1\.00 s of audio .*fake-gpu-1/);
    const file = await readFile(join(dir, "out.wav"));
    expect(new DataView(file.buffer, file.byteOffset).getUint32(40, true)).toBe(16_000);

    hang = true;
    const proc = start(["speak", "Hello", "-o", "stopped.wav"], env);
    const result = finish(proc);
    await hanging;
    proc.kill("SIGINT");
    expect(await result).toMatchObject({ code: 130, stderr: "voxgate speak: interrupted\n" });
    expect(await readdir(dir)).toEqual(["out.wav"]);
  });
});
