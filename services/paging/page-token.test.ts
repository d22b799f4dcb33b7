import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_PAGE_SIZE,
  decodePageToken,
  encodePageToken,
  MAX_PAGE_SIZE,
  pageSizeOf,
} from "./page-token.js";

function errorOf(fn: () => unknown): ConnectError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected a ConnectError");
}

describe("pageSizeOf", () => {
  it("uses the default for 0 and caps large sizes", () => {
    expect(DEFAULT_PAGE_SIZE).toBe(50);
    expect(MAX_PAGE_SIZE).toBe(500);
    expect(pageSizeOf(0)).toBe(DEFAULT_PAGE_SIZE);
    expect(pageSizeOf(1)).toBe(1);
    expect(pageSizeOf(500)).toBe(500);
    expect(pageSizeOf(501)).toBe(MAX_PAGE_SIZE);
    expect(pageSizeOf(2 ** 31 - 1)).toBe(MAX_PAGE_SIZE);
  });

  it("refuses a negative size with INVALID_ARGUMENT", () => {
    const error = errorOf(() => pageSizeOf(-1));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("page_size must not be negative");
  });
});

describe("page tokens", () => {
  it("round-trip offsets through an opaque URL-safe token", () => {
    for (const offset of [0, 1, 50, 499, 123_456_789]) {
      const token = encodePageToken(offset);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodePageToken(token)).toBe(offset);
    }
    expect(encodePageToken(50)).not.toBe(encodePageToken(100));
  });

  it("reads an empty token as the first page", () => {
    expect(decodePageToken("")).toBe(0);
  });

  it.each([
    ["garbage", "not-a-token!"],
    ["base64 of non-JSON", Buffer.from("hello").toString("base64url")],
    ["a negative offset", Buffer.from('{"o":-1}').toString("base64url")],
    ["a fractional offset", Buffer.from('{"o":1.5}').toString("base64url")],
    ["a string offset", Buffer.from('{"o":"5"}').toString("base64url")],
    ["no offset", Buffer.from("{}").toString("base64url")],
    ["JSON null", Buffer.from("null").toString("base64url")],
  ])("refuses %s with INVALID_ARGUMENT", (_case, token) => {
    const error = errorOf(() => decodePageToken(token));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("page_token is not one this server issued");
  });
});
