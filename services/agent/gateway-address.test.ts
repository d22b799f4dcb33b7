import { describe, expect, it } from "vitest";
import { parseGatewayAddress } from "./gateway-address.js";

describe("parseGatewayAddress", () => {
  it("dials TLS for https:// and cleartext for http:// and the old bare host:port", () => {
    expect(parseGatewayAddress("https://gw.example.com:8081")).toEqual({
      address: "gw.example.com:8081",
      tls: true,
    });
    expect(parseGatewayAddress("https://gw.example.com")).toEqual({
      address: "gw.example.com:443",
      tls: true,
    });
    expect(parseGatewayAddress("HTTPS://[::1]:9/")).toEqual({ address: "[::1]:9", tls: true });
    expect(parseGatewayAddress("http://10.0.0.2:8081")).toEqual({
      address: "10.0.0.2:8081",
      tls: false,
    });
    expect(parseGatewayAddress("127.0.0.1:8081")).toEqual({
      address: "127.0.0.1:8081",
      tls: false,
    });
  });

  it("refuses paths, credentials, other schemes and bad ports, saying which forms work", () => {
    for (const bad of [
      "https://gw/path",
      "https://user@gw:1",
      "grpcs://gw:1",
      "gw",
      "gw:0",
      "gw:70000",
      "",
    ]) {
      expect(() => parseGatewayAddress(bad), bad).toThrow(/https:\/\/HOST:PORT|out of range/);
    }
  });
});
