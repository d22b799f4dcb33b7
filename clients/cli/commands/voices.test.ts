import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  type ListVoicesRequest,
  VoiceSchema,
  VoiceService,
  VoiceType,
} from "../../../gen/voxgate/v1/voice_pb.js";
import { type FakeGateway, startFakeGateway } from "../../testing/fake-gateway.js";
import { createTestIo } from "../../testing/test-io.js";
import { main } from "../main.js";

const TOKEN = "vxg_voices-test";

const VOICES = [
  create(VoiceSchema, {
    id: "en-us",
    name: "English (US)",
    type: VoiceType.PRESET,
    engine: "espeak-ng",
    languages: ["en-US"],
  }),
  create(VoiceSchema, {
    id: "de",
    name: "German",
    type: VoiceType.PRESET,
    engine: "espeak-ng",
    languages: ["de"],
  }),
  create(VoiceSchema, {
    id: "fr",
    name: "French",
    type: VoiceType.PRESET,
    engine: "espeak-ng",
    languages: ["fr", "fr-CA"],
  }),
  create(VoiceSchema, {
    id: "v_7f3a",
    name: "Narrator",
    type: VoiceType.CLONED,
    engine: "qwen3-tts",
    languages: ["en"],
  }),
  create(VoiceSchema, {
    id: "v_9b1c",
    name: "Grandma",
    type: VoiceType.CLONED,
    engine: "qwen3-tts",
    languages: [],
  }),
];

/** Serves {@link VOICES} two per page, whatever page size is asked for. */
function fakeVoices(
  requests: ListVoicesRequest[],
  repeatToken = false,
): Partial<ServiceImpl<typeof VoiceService>> {
  return {
    async listVoices(req) {
      requests.push(req);
      const start = req.pageToken === "" ? 0 : Number(req.pageToken.slice(1));
      const end = start + 2;
      const nextPageToken = end < VOICES.length ? `p${repeatToken ? 2 : end}` : "";
      return { voices: VOICES.slice(start, end), nextPageToken };
    },
  };
}

let gateway: FakeGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

async function start(
  service: Partial<ServiceImpl<typeof VoiceService>>,
): Promise<Record<string, string>> {
  gateway = await startFakeGateway({
    token: TOKEN,
    routes: (router) => router.service(VoiceService, service),
  });
  return { VOXGATE_URL: gateway.url, VOXGATE_TOKEN: TOKEN };
}

describe("voxgate voices", () => {
  it("prints every page as one aligned table", async () => {
    const requests: ListVoicesRequest[] = [];
    const t = createTestIo({ env: await start(fakeVoices(requests)) });
    expect(await main(["voices"], t.io)).toBe(0);
    expect(t.stdout()).toBe(
      [
        "ID      NAME          TYPE    ENGINE     LANGUAGES",
        "en-us   English (US)  preset  espeak-ng  en-US",
        "de      German        preset  espeak-ng  de",
        "fr      French        preset  espeak-ng  fr,fr-CA",
        "v_7f3a  Narrator      cloned  qwen3-tts  en",
        "v_9b1c  Grandma       cloned  qwen3-tts",
        "",
      ].join("\n"),
    );
    expect(requests.map((r) => r.pageToken)).toEqual(["", "p2", "p4"]);
    expect(requests.every((r) => r.pageSize === 500 && r.engine === "")).toBe(true);
    expect(t.stderr()).toBe("");
  });

  it("passes --engine and prints JSON with --json", async () => {
    const requests: ListVoicesRequest[] = [];
    const t = createTestIo({ env: await start(fakeVoices(requests)) });
    expect(await main(["voices", "--engine", "qwen3-tts", "--json"], t.io)).toBe(0);
    const json = JSON.parse(t.stdout()) as { id: string; type: string; languages?: string[] }[];
    expect(json.map((v) => v.id)).toEqual(VOICES.map((v) => v.id));
    expect(json[3]).toMatchObject({ id: "v_7f3a", type: "VOICE_TYPE_CLONED", languages: ["en"] });
    expect(requests[0]?.engine).toBe("qwen3-tts");
  });

  it("says so when there are no voices", async () => {
    const t = createTestIo({
      env: await start({ listVoices: async () => ({ voices: [], nextPageToken: "" }) }),
    });
    expect(await main(["voices", "--engine", "none"], t.io)).toBe(0);
    expect(t.stdout()).toBe("ID  NAME  TYPE  ENGINE  LANGUAGES\n");
    expect(t.stderr()).toBe('no voices for engine "none"\n');
  });

  it("stops a server that repeats a page token", async () => {
    const t = createTestIo({ env: await start(fakeVoices([], true)) });
    expect(await main(["voices"], t.io)).toBe(1);
    expect(t.stderr()).toBe(
      'voxgate voices: the gateway repeated page token "p2" while listing voices\n',
    );
    expect(t.stdout()).toBe("");
  });

  it("hints at the voices scope on PERMISSION_DENIED", async () => {
    const t = createTestIo({
      env: await start({
        async listVoices() {
          throw new ConnectError('token "ci" has no "voices" scope', Code.PermissionDenied);
        },
      }),
    });
    expect(await main(["voices"], t.io)).toBe(1);
    expect(t.stderr()).toBe(
      'voxgate voices: the token lacks the "voices" scope (token "ci" has no "voices" scope): create one with voxgate token create --scopes voices\n',
    );
  });
});
