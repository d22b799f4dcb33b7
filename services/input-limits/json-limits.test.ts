import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  checkJsonText,
  createJsonLimitScanner,
  isJsonLimitError,
  type JsonLimitError,
  readJsonText,
} from "./json-limits.js";

const limits = { maxDepth: 3, maxBytes: 100 };

function refusal(fn: () => void): JsonLimitError {
  try {
    fn();
  } catch (err) {
    if (isJsonLimitError(err)) return err;
    throw err;
  }
  throw new Error("expected a JsonLimitError");
}

describe("createJsonLimitScanner", () => {
  it("allows nesting up to the limit and refuses one level more, naming the setting", () => {
    expect(() => checkJsonText('{"a":[[1]]}', limits)).not.toThrow();
    const err = refusal(() => checkJsonText('{"a":[[[1]]]}', limits));
    expect(err.limit).toBe("depth");
    expect(err.message).toContain("VOXGATE_MAX_JSON_DEPTH");
  });

  it("ignores brackets inside strings, escaped quotes included", () => {
    expect(() => checkJsonText('{"a":"[[[[\\"[[[["}', limits)).not.toThrow();
  });

  it("keeps its state across pieces split anywhere, even inside an escape", () => {
    const text = Buffer.from('["\\"[[[[", [[1]]]');
    for (let cut = 0; cut <= text.length; cut++) {
      const scanner = createJsonLimitScanner(limits);
      scanner.push(text.subarray(0, cut));
      scanner.push(text.subarray(cut));
    }
    const deep = Buffer.from('["\\"", [[[1]]]]');
    for (let cut = 0; cut <= deep.length; cut++) {
      const scanner = createJsonLimitScanner(limits);
      expect(() => {
        scanner.push(deep.subarray(0, cut));
        scanner.push(deep.subarray(cut));
      }).toThrow(/nests deeper than 3/);
    }
  });

  it("refuses more bytes than the limit and starts over after reset", () => {
    const scanner = createJsonLimitScanner(limits);
    scanner.push(Buffer.alloc(100, 0x20));
    expect(refusal(() => scanner.push(Buffer.from(" "))).limit).toBe("bytes");
    scanner.reset();
    expect(scanner.bytes).toBe(0);
    expect(() => scanner.push(Buffer.from("[[[1]]]"))).not.toThrow();
  });
});

describe("readJsonText", () => {
  const request = (pieces: string[], headers: Record<string, string> = {}) =>
    Object.assign(Readable.from(pieces.map((p) => Buffer.from(p))), { headers });

  it("returns the text of a body within the limits", async () => {
    expect(await readJsonText(request(['{"a":', "[1]}"]), limits)).toBe('{"a":[1]}');
  });

  it("rejects a deep body at the piece that passes the limit and stops reading", async () => {
    // An endless body: only stopping at the limit lets the promise settle.
    let served = 0;
    const pieces = ["[[", "[[", "1]]]]", "more"];
    const req = Object.assign(
      new Readable({
        read() {
          this.push(Buffer.from(pieces[served++ % pieces.length] as string));
        },
      }),
      { headers: {} },
    );
    await expect(readJsonText(req, limits)).rejects.toMatchObject({ limit: "depth" });
    expect(req.isPaused()).toBe(true);
  });

  it("rejects at once when Content-Length announces too many bytes", async () => {
    await expect(
      readJsonText(request(["{}"], { "content-length": "101" }), limits),
    ).rejects.toMatchObject({ limit: "bytes" });
  });
});
