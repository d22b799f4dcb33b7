import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateToken, hashToken, TOKEN_PREFIX } from "./token-codec.js";

describe("generateToken", () => {
  it("is the prefix plus 43 base64url characters (32 random bytes)", () => {
    const token = generateToken();
    expect(TOKEN_PREFIX).toBe("vxg_");
    expect(token).toMatch(/^vxg_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(TOKEN_PREFIX.length), "base64url")).toHaveLength(32);
  });

  it("never repeats", () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => generateToken()));
    expect(tokens.size).toBe(1000);
  });
});

describe("hashToken", () => {
  it("is the lowercase hex sha256 of the whole token", () => {
    // sha256("abc") from FIPS 180-2, appendix B.1.
    expect(hashToken("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    const token = generateToken();
    expect(hashToken(token)).toBe(createHash("sha256").update(token).digest("hex"));
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("hashes UTF-8 bytes and tells tokens apart", () => {
    expect(hashToken("é")).toBe(
      createHash("sha256")
        .update(Buffer.from([0xc3, 0xa9]))
        .digest("hex"),
    );
    expect(hashToken("vxg_a")).not.toBe(hashToken("vxg_b"));
  });
});
