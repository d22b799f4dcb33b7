/**
 * gRPC server reflection on a real gateway and agent process, driven by the real `buf curl`
 * (from @bufbuild/buf) with no schema: it lists every service and method the public port serves,
 * over Connect and over gRPC (h2c), through v1 and v1alpha, and calls one method of every service.
 * The README's discovery examples are run as written there, but for the port and `npx buf`, which
 * becomes the installed binary's path (npx alone took seconds per call on a loaded machine).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/health/v1/health_pb.js";
import { BackendAdminService } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { JobService } from "../../gen/voxgate/v1/job_pb.js";
import { LlmService } from "../../gen/voxgate/v1/llm_pb.js";
import { PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import { REFLECTION_SERVICES } from "../../services/reflection/index.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const buf = join(root, "node_modules", ".bin", "buf");
const README = readFileSync(join(root, "README.md"), "utf8");
const README_URL = "http://127.0.0.1:8080";
/** What the public port serves: the typed services, health and reflection itself. */
const SERVED = [
  TtsService,
  VoiceService,
  PromptStoreService,
  JobService,
  BackendAdminService,
  LlmService,
  Health,
  ...REFLECTION_SERVICES,
];

/** The README's discovery examples: each `<!-- discovery-example: NAME -->` and its sh block. */
function readmeExamples(): Map<string, string> {
  const examples = new Map<string, string>();
  for (const m of README.matchAll(/<!-- discovery-example: (\S+) -->\n```sh\n([\s\S]*?)\n```/g)) {
    examples.set(m[1] ?? "", m[2] ?? "");
  }
  return examples;
}

/** Splits `buf curl`'s output of a stream (pretty JSON objects one after another) into messages. */
function jsonMessages(output: string): unknown[] {
  return output
    .split(/(?<=^\})\n/m)
    .filter((part) => part.trim() !== "")
    .map((part) => JSON.parse(part) as unknown);
}

describe("gRPC server reflection with buf curl, no schema", () => {
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess> | undefined;
  const examples = readmeExamples();

  /** Runs `buf curl` with `args`; resolves with its exit code, stdout and stderr. */
  const bufCurl = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(buf, ["curl", ...args], {
        maxBuffer: 32 * 1024 * 1024,
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: Number(e.code ?? -1), stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  };
  const auth = () => ["-H", `Authorization: Bearer ${gateway.clientToken}`];

  /** Runs README example `name` in the repository root. */
  const runExample = async (name: string) => {
    const script = examples.get(name);
    if (!script) throw new Error(`README has no discovery-example "${name}"`);
    expect(script).toContain(README_URL);
    expect(script).toContain("npx buf curl");
    const command = script.replaceAll(README_URL, gateway.url).replaceAll("npx buf ", `${buf} `);
    const { stdout } = await run("sh", ["-c", command], {
      cwd: root,
      env: { ...process.env, VOXGATE_TOKEN: gateway.clientToken },
      maxBuffer: 32 * 1024 * 1024,
      timeout: 60_000,
    });
    return stdout;
  };

  beforeAll(async () => {
    gateway = await startGatewayProcess();
    agent = startAgentProcess(gateway, "reflection-agent");
    await agent.connected;
    await waitFor(
      async () => {
        const res = await fetch(`${gateway.url}/v1/backends`, {
          headers: { authorization: `Bearer ${gateway.clientToken}` },
        });
        const body = (await res.json()) as { backends?: Array<{ state: string }> };
        return body.backends?.some((b) => b.state === "BACKEND_STATE_READY");
      },
      { timeoutMs: 30_000, what: "a ready backend" },
    );
  }, 60_000);

  afterAll(async () => {
    await agent?.proc.stop();
    const code = await gateway?.proc.stop();
    expect(code).toBe(0);
  });

  it("the README shows every example this test runs", () => {
    expect([...examples.keys()].sort()).toEqual(
      ["list-methods", "list-services", "stream", "unary"].sort(),
    );
  });

  it("README: --list-services names every service of the public port, without a token", async () => {
    const listed = (await runExample("list-services")).trim().split("\n");
    expect(listed).toEqual(SERVED.map((s) => s.typeName).sort());
  });

  it("README: --list-methods names every method of every service", async () => {
    const listed = (await runExample("list-methods")).trim().split("\n");
    const expected = SERVED.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
    expect(listed.sort()).toEqual(expected.sort());
  });

  for (const [protocol, extra] of [
    ["grpc", ["--http2-prior-knowledge"]],
    ["grpcweb", []],
  ] as const) {
    for (const reflect of ["grpc-v1", "grpc-v1alpha"]) {
      it(`lists services over ${protocol} through ${reflect}`, async () => {
        const result = await bufCurl([
          "--protocol",
          protocol,
          ...extra,
          "--reflect-protocol",
          reflect,
          "--list-services",
          gateway.url,
        ]);
        expect(result.stderr).toBe("");
        expect(result.stdout.trim().split("\n")).toEqual(SERVED.map((s) => s.typeName).sort());
      });
    }
  }

  it("README: a unary call (ListVoices) takes its schema from the server", async () => {
    const body = JSON.parse(await runExample("unary")) as {
      voices: Array<{ id: string; engine: string }>;
      nextPageToken: string;
    };
    // pageSize 5 of the agent's many preset voices: a full page and a token for the next.
    expect(body.voices).toHaveLength(5);
    expect(body.voices.every((v) => v.id && v.engine)).toBe(true);
    expect(body.nextPageToken).toBeTruthy();
  });

  it("README: a server-streaming call (StreamSynthesize over gRPC) gets audio chunks", async () => {
    const messages = jsonMessages(await runExample("stream")) as Array<{
      contentType?: string;
      data?: string;
    }>;
    // The gateway may coalesce a short clip into one message; the RPC is a server stream anyway.
    expect(messages.length).toBeGreaterThanOrEqual(1);
    expect(messages[0]?.contentType).toMatch(/^audio\/wav/);
    const audio = Buffer.concat(messages.map((m) => Buffer.from(m.data ?? "", "base64")));
    expect(audio.subarray(0, 4).toString()).toBe("RIFF");
    expect(audio.byteLength).toBeGreaterThan(22_050);
  });

  // One method of each service, each answered by the service itself (a failed lookup of the
  // schema would fail inside buf curl, before any request, with no `code` in the output).
  const CALLS: Array<{ path: string; body: string; expect: (out: string) => void }> = [
    {
      path: "grpc.health.v1.Health/Check",
      body: '{"service":"voxgate.v1.TtsService"}',
      expect: (out) => expect(JSON.parse(out)).toEqual({ status: "SERVING" }),
    },
    {
      path: "voxgate.v1.BackendAdminService/ListBackends",
      body: "{}",
      expect: (out) =>
        expect(JSON.parse(out).backends.map((b: { id: string }) => b.id)).toContain(
          "reflection-agent",
        ),
    },
    {
      path: "voxgate.v1.JobService/ListJobs",
      body: '{"pageSize":1}',
      expect: (out) => expect(JSON.parse(out)).toEqual({}),
    },
    {
      path: "voxgate.v1.PromptStoreService/ListPrompts",
      body: "{}",
      expect: (out) => expect(JSON.parse(out)).toEqual({}),
    },
    {
      path: "voxgate.v1.VoiceService/GetVoice",
      body: '{"voiceId":"no-such-voice"}',
      expect: (out) => expect(JSON.parse(out).code).toBe("not_found"),
    },
    {
      path: "voxgate.v1.TtsService/Synthesize",
      body: '{"text":"Hi."}',
      expect: (out) => expect(JSON.parse(out).contentType).toMatch(/^audio\/wav/),
    },
    {
      // No language model behind this agent: the service's own refusal proves the call arrived.
      path: "voxgate.v1.LlmService/Generate",
      body: '{"messages":[{"role":"user","content":"hi"}]}',
      expect: (out) =>
        expect(["unavailable", "failed_precondition"]).toContain(JSON.parse(out).code),
    },
  ];

  it("calls one method of every typed service and health without a schema", async () => {
    const called = new Set(CALLS.map((c) => c.path.split("/")[0]));
    expect([...called].sort()).toEqual(
      SERVED.map((s) => s.typeName)
        .filter((n) => !n.startsWith("grpc.reflection."))
        .sort(),
    );
    for (const call of CALLS) {
      const result = await bufCurl([...auth(), "-d", call.body, `${gateway.url}/${call.path}`]);
      const out = result.code === 0 ? result.stdout : result.stderr;
      call.expect(out);
    }
  }, 120_000);

  it("opens reflection without a token but keeps typed calls behind one", async () => {
    const result = await bufCurl(["-d", "{}", `${gateway.url}/voxgate.v1.VoiceService/ListVoices`]);
    expect(result.code).not.toBe(0);
    expect(JSON.parse(result.stderr).code).toBe("unauthenticated");
  });
});
