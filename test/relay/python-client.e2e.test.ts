/**
 * The Qwen3 relay's Python client (`client/tts_client.py` of decay256/qwen3-tts-server) against an
 * in-process gateway and a real espeak-ng agent: clone a voice, list it, speak with it by name,
 * delete it.
 *
 * Two forms: a line-by-line TypeScript replay of the requests `TTSClient` builds (always runs:
 * same paths, headers, multipart fields and JSON keys; the same response fields read), and the
 * real client run by python3 when this machine has it (`aiohttp` from Debian's python3-aiohttp,
 * and the predecessor's repository at `VOXGATE_QWEN3_REPO`, default its mirror in /work/.mirror;
 * the client is read from there at test time, never copied into this repository).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RelayStack, startRelayStack } from "./relay-stack.js";

const run = promisify(execFile);
const REFERENCE_TEXT =
  "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.";
const QWEN3_REPO = process.env.VOXGATE_QWEN3_REPO ?? "/work/.mirror/decay256+qwen3-tts-server/repo";

/** A python3 that can import aiohttp, or undefined. */
function findPython(): string | undefined {
  for (const candidate of ["python3", "/usr/bin/python3"]) {
    try {
      execFileSync(candidate, ["-c", "import aiohttp"], { stdio: "ignore", timeout: 10_000 });
      return candidate;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

/** The predecessor's client source, read from its repository, or undefined. */
function clientSource(): string | undefined {
  if (!existsSync(QWEN3_REPO)) return undefined;
  try {
    return execFileSync("git", ["-C", QWEN3_REPO, "show", "HEAD:client/tts_client.py"], {
      encoding: "utf8",
      timeout: 10_000,
    });
  } catch {
    return undefined;
  }
}

let stack: RelayStack;
let reference: Buffer;

beforeAll(async () => {
  stack = await startRelayStack({ agents: { "py-agent": {} } });
  const res = await stack.fetch("/v1/tts", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text: REFERENCE_TEXT }),
  });
  expect(res.status).toBe(200);
  reference = Buffer.from(await res.arrayBuffer());
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe("client/tts_client.py, replayed request by request", () => {
  // TTSClient.__aenter__: one session with this header on every request.
  const headers = () => ({ Authorization: `Bearer ${stack.tokens.client}` });
  let voiceId = "";

  it("status(): GET /api/v1/status, raise_for_status, JSON", async () => {
    const resp = await fetch(`${stack.url}/api/v1/status`, { headers: headers() });
    expect(resp.ok).toBe(true);
    expect(await resp.json()).toMatchObject({ relay: "ok", tunnel_connected: true });
  });

  it("clone_voice(bytes, name): multipart voice_name + reference_audio (reference.wav)", async () => {
    const form = new FormData();
    form.append("voice_name", "Replay Narrator");
    form.append("reference_audio", new Blob([reference], { type: "audio/wav" }), "reference.wav");
    const resp = await fetch(`${stack.url}/api/v1/tts/clone`, {
      method: "POST",
      headers: headers(),
      body: form,
    });
    expect(resp.ok, await resp.clone().text()).toBe(true);
    const data = (await resp.json()) as Record<string, string>;
    // VoiceInfo(voice_id=data["voice_id"], name=data["name"], voice_type=data["type"])
    expect(data.voice_id).toMatch(/^vc_/);
    expect(data.name).toBe("Replay Narrator");
    expect(data.type).toBe("cloned");
    voiceId = data.voice_id ?? "";
    // The first write opens the gateway's database: seconds, more on a loaded machine.
  }, 120_000);

  it("list_voices(): GET /api/v1/tts/voices → voices[] with voice_id, name, type", async () => {
    const resp = await fetch(`${stack.url}/api/v1/tts/voices`, { headers: headers() });
    expect(resp.ok).toBe(true);
    const data = (await resp.json()) as { voices: Array<Record<string, unknown>> };
    const mine = data.voices.find((v) => v.voice_id === voiceId);
    expect(mine).toMatchObject({ name: "Replay Narrator", type: "cloned" });
    expect(data.voices.some((v) => v.type === "preset")).toBe(true);
  });

  it("synthesize(text, voice_id=NAME): JSON {text, voice_id, format: mp3}; headers read", async () => {
    const resp = await fetch(`${stack.url}/api/v1/tts/synthesize`, {
      method: "POST",
      headers: { ...headers(), "Content-Type": "application/json" },
      body: JSON.stringify({ text: "Hello world", voice_id: "Replay Narrator", format: "mp3" }),
    });
    expect(resp.ok, await resp.clone().text()).toBe(true);
    const audio = Buffer.from(await resp.arrayBuffer());
    // format=Content-Type.split("/")[-1]; float(X-Duration-Seconds); int(X-Sample-Rate); X-Voice-ID
    expect(resp.headers.get("Content-Type")?.split("/").at(-1)).toBe("mpeg");
    expect(Number.parseFloat(resp.headers.get("X-Duration-Seconds") ?? "0")).toBeGreaterThan(0.3);
    expect(Number.parseInt(resp.headers.get("X-Sample-Rate") ?? "0", 10)).toBeGreaterThan(8000);
    expect(resp.headers.get("X-Voice-ID")).toBe(voiceId);
    expect(audio.byteLength).toBeGreaterThan(1000);
  });

  it("design_voice(description) sends no text: 400 {error}, as the relay's GPU server answered", async () => {
    const resp = await fetch(`${stack.url}/api/v1/tts/design`, {
      method: "POST",
      headers: { ...headers(), "Content-Type": "application/json" },
      body: JSON.stringify({ description: "A warm narrator", name: "Warm" }),
    });
    expect(resp.status).toBe(400);
    const body = (await resp.json()) as { error: string };
    expect(body.error).toBe("Missing 'text' field");
  });

  it("deletes the voice: DELETE /api/v1/tts/voices/{voice_id} → {deleted}", async () => {
    const resp = await fetch(`${stack.url}/api/v1/tts/voices/${voiceId}`, {
      method: "DELETE",
      headers: headers(),
    });
    expect(await resp.json()).toEqual({ deleted: voiceId });
    const again = await fetch(`${stack.url}/api/v1/tts/synthesize`, {
      method: "POST",
      headers: { ...headers(), "Content-Type": "application/json" },
      body: JSON.stringify({ text: "Gone", voice_id: "Replay Narrator" }),
    });
    expect(again.status).toBe(404);
  });
});

const python = findPython();
const source = clientSource();

describe.skipIf(!python || !source)("client/tts_client.py itself, run by python3", () => {
  it("clones a voice, lists it, speaks with it by name and deletes it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "voxgate-pyclient-"));
    try {
      await writeFile(join(dir, "tts_client.py"), source ?? "");
      await writeFile(join(dir, "reference.wav"), reference);
      // The driver uses only TTSClient's methods, plus its session for the one call the client
      // has no method for (deleting a voice).
      await writeFile(
        join(dir, "driver.py"),
        `import asyncio, json, sys
from tts_client import TTSClient

async def main(url, key, ref):
    out = {}
    async with TTSClient(url, key) as client:
        out["status"] = await client.status()
        voice = await client.clone_voice(ref, "Py Narrator")
        out["cloned"] = {"voice_id": voice.voice_id, "name": voice.name, "type": voice.voice_type}
        out["listed"] = [v.name for v in await client.list_voices() if v.voice_type == "cloned"]
        spoken = await client.synthesize("Hello from Python.", voice_id="Py Narrator", format="wav")
        out["spoken"] = {"bytes": len(spoken.audio_data), "riff": spoken.audio_data[:4] == b"RIFF",
                         "format": spoken.format, "duration": spoken.duration_seconds,
                         "sample_rate": spoken.sample_rate, "voice_id": spoken.voice_id}
        async with client.session.delete(f"{url}/api/v1/tts/voices/{voice.voice_id}") as resp:
            out["deleted"] = {"status": resp.status, "body": await resp.json()}
        try:
            await client.synthesize("Gone.", voice_id="Py Narrator")
            out["after_delete"] = "spoke"
        except Exception as exc:
            out["after_delete"] = getattr(exc, "status", str(exc))
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
`,
      );
      const { stdout } = await run(
        python ?? "python3",
        ["driver.py", stack.url, stack.tokens.client, "reference.wav"],
        { cwd: dir, timeout: 60_000 },
      );
      const out = JSON.parse(stdout) as Record<string, Record<string, unknown> & unknown[]>;
      expect(out.status).toMatchObject({ relay: "ok", tunnel_connected: true });
      expect(out.cloned).toMatchObject({ name: "Py Narrator", type: "cloned" });
      expect(out.listed).toContain("Py Narrator");
      expect(out.spoken).toMatchObject({
        riff: true,
        format: "wav",
        sample_rate: 22050,
        voice_id: out.cloned?.voice_id,
      });
      expect(Number(out.spoken?.duration)).toBeGreaterThan(0.3);
      expect(out.deleted).toEqual({ status: 200, body: { deleted: out.cloned?.voice_id } });
      expect(out.after_delete).toBe(404);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
