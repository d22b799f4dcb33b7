import { describe, expect, it } from "vitest";
import { parseBearer } from "./bearer.js";

describe("parseBearer", () => {
  it.each([
    ["Bearer vxg_abc", "vxg_abc"],
    ["bearer vxg_abc", "vxg_abc"],
    ["BEARER vxg_abc", "vxg_abc"],
    ["BeArEr vxg_abc", "vxg_abc"],
    ["  Bearer   vxg_abc  ", "vxg_abc"],
    ["Bearer\tvxg_abc", "vxg_abc"],
    ["Bearer a.b-c_d~e+f/g=", "a.b-c_d~e+f/g="],
  ])("takes the token from %j", (header, token) => {
    expect(parseBearer(header)).toBe(token);
  });

  it.each([
    ["Basic dXNlcjpwYXNz"],
    ["Token vxg_abc"],
    ["Bearer"],
    ["Bearer "],
    ["Bearervxg_abc"],
    ["Bearer vxg_abc extra"],
    ["vxg_abc"],
    [""],
  ])("returns undefined for %j", (header) => {
    expect(parseBearer(header)).toBeUndefined();
  });

  it("returns undefined for a missing header", () => {
    expect(parseBearer(undefined)).toBeUndefined();
    expect(parseBearer(null)).toBeUndefined();
  });

  it("reads the first value of a repeated header", () => {
    expect(parseBearer(["Bearer first", "Bearer second"])).toBe("first");
    expect(parseBearer(["Basic abc", "Bearer second"])).toBeUndefined();
    expect(parseBearer([])).toBeUndefined();
  });
});
