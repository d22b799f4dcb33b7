import { describe, expect, it } from "vitest";
import { generateToken, hashToken } from "./token-codec.js";
import { createTokenStore, type TokenEntry } from "./token-store.js";

const CLIENT = generateToken();
const AGENT = generateToken();

const entries: TokenEntry[] = [
  { name: "storyforge-cloud", sha256: hashToken(CLIENT), scopes: ["tts", "voices"] },
  { name: "gpu-box", sha256: hashToken(AGENT), scopes: ["agent"] },
];

describe("createTokenStore", () => {
  it("returns the principal of the matching token with its scopes", () => {
    const store = createTokenStore(entries);
    expect(store.size).toBe(2);

    const client = store.verify(CLIENT);
    expect(client?.name).toBe("storyforge-cloud");
    expect([...(client?.scopes ?? [])].sort()).toEqual(["tts", "voices"]);
    expect(client?.scopes.has("agent")).toBe(false);

    const agent = store.verify(AGENT);
    expect(agent?.name).toBe("gpu-box");
    expect([...(agent?.scopes ?? [])]).toEqual(["agent"]);
  });

  it("returns undefined for a wrong, empty, missing or oversize token", () => {
    const store = createTokenStore(entries);
    expect(store.verify(generateToken())).toBeUndefined();
    expect(store.verify(`${CLIENT}x`)).toBeUndefined();
    expect(store.verify(CLIENT.slice(0, -1))).toBeUndefined();
    expect(store.verify(CLIENT.toUpperCase())).toBeUndefined();
    expect(store.verify("")).toBeUndefined();
    expect(store.verify(undefined)).toBeUndefined();
    // The stored hash itself is not a token.
    expect(store.verify(hashToken(CLIENT))).toBeUndefined();
  });

  it("refuses tokens longer than 512 characters even when their hash is configured", () => {
    const long = "a".repeat(513);
    const limit = "b".repeat(512);
    const store = createTokenStore([
      { name: "long", sha256: hashToken(long), scopes: ["tts"] },
      { name: "limit", sha256: hashToken(limit), scopes: ["tts"] },
    ]);
    expect(store.verify(long)).toBeUndefined();
    expect(store.verify(limit)?.name).toBe("limit");
  });

  it("accepts nothing when no token is configured", () => {
    const store = createTokenStore([]);
    expect(store.size).toBe(0);
    expect(store.verify(CLIENT)).toBeUndefined();
  });

  it.each([
    ["uppercase hex", hashToken("x").toUpperCase()],
    ["too short", hashToken("x").slice(1)],
    ["too long", `${hashToken("x")}0`],
    ["not hex", "z".repeat(64)],
    ["empty", ""],
  ])("throws at creation for a sha256 that is %s", (_case, sha256) => {
    expect(() => createTokenStore([{ name: "bad", sha256, scopes: ["tts"] }])).toThrow(
      'token "bad": sha256 must be 64 lowercase hex characters',
    );
  });

  it("throws at creation when a name is used twice", () => {
    expect(() =>
      createTokenStore([
        { name: "twin", sha256: hashToken("a"), scopes: ["tts"] },
        { name: "twin", sha256: hashToken("b"), scopes: ["jobs"] },
      ]),
    ).toThrow('token name "twin" is used twice');
  });

  it("gives each principal its own scope set, unaffected by later changes to the entry", () => {
    const scopes: TokenEntry["scopes"][number][] = ["tts"];
    const store = createTokenStore([{ name: "mutable", sha256: hashToken(CLIENT), scopes }]);
    scopes.push("admin");
    expect(store.verify(CLIENT)?.scopes.has("admin")).toBe(false);
  });

  it("replace() swaps every token at once; an invalid set changes nothing", () => {
    const store = createTokenStore([{ name: "old", sha256: hashToken("a"), scopes: ["tts"] }]);
    store.replace([{ name: "new", sha256: hashToken("b"), scopes: ["jobs"] }]);
    expect(store.verify("a")).toBeUndefined();
    expect(store.verify("b")?.name).toBe("new");
    expect(store.size).toBe(1);
    expect(() =>
      store.replace([
        { name: "twin", sha256: hashToken("c"), scopes: ["tts"] },
        { name: "twin", sha256: hashToken("d"), scopes: ["tts"] },
      ]),
    ).toThrow('token name "twin" is used twice');
    expect(store.verify("b")?.name).toBe("new");
    expect(store.verify("c")).toBeUndefined();
  });
});
