import { once } from "node:events";
import * as net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createVoxgateClient } from "../voxgate-client.js";
import { CliError, CliUsageError, describeError, isParseArgsError } from "./cli-errors.js";
import { parseFlags } from "./parse-flags.js";

const URL = "http://127.0.0.1:8080";

function nodeError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe("describeError", () => {
  it.each([
    [
      Code.Unauthenticated,
      "bad token",
      {},
      "the gateway refused the token: set VOXGATE_TOKEN or pass --token",
    ],
    [
      Code.PermissionDenied,
      'token "ci" lacks scope admin',
      { scope: "admin" },
      'the token lacks the "admin" scope (token "ci" lacks scope admin): create one with voxgate token create --scopes admin',
    ],
    [
      Code.PermissionDenied,
      "nope",
      {},
      "the token is not allowed to do this (nope): create one with the scope this call needs (voxgate token create --scopes …)",
    ],
    [
      Code.InvalidArgument,
      "text is longer than 5000 characters",
      {},
      "text is longer than 5000 characters",
    ],
    [Code.NotFound, 'voice "xx" not found', {}, 'voice "xx" not found'],
    [
      Code.Unavailable,
      "no ready backend hosts engine x",
      { baseUrl: URL },
      `the gateway at ${URL} is unavailable: no ready backend hosts engine x`,
    ],
    [
      Code.DeadlineExceeded,
      "deadline",
      { timeoutMs: 2500 },
      "no answer within 2.5 s: pass a larger --timeout (seconds)",
    ],
    [
      Code.ResourceExhausted,
      "all 4 slots busy",
      {},
      "the gateway is at capacity (all 4 slots busy): try again shortly",
    ],
    [
      Code.Unimplemented,
      "",
      { baseUrl: URL },
      `the server at ${URL} does not offer this call (unimplemented): is it a voxgate gateway of this version?`,
    ],
    [Code.Canceled, "x", {}, "cancelled"],
    [
      Code.Internal,
      "boom",
      {},
      "the gateway failed (internal): boom; set VOXGATE_DEBUG=1 for details",
    ],
    [
      Code.DataLoss,
      "",
      {},
      "the gateway failed (data_loss): data_loss; set VOXGATE_DEBUG=1 for details",
    ],
  ])("maps code %i (%s)", (code, message, context, expected) => {
    expect(describeError(new ConnectError(message, code), context)).toBe(expected);
  });

  it("recognizes a refused connection anywhere in the cause chain", () => {
    const direct = new ConnectError(
      "connect ECONNREFUSED",
      Code.Unavailable,
      undefined,
      undefined,
      nodeError("ECONNREFUSED"),
    );
    const refused = `cannot reach the gateway at ${URL} — is it running? (npm start)`;
    expect(describeError(direct, { baseUrl: URL })).toBe(refused);
    // Node reports a failed dual-stack connect as an AggregateError of per-address errors.
    const aggregate = new AggregateError(
      [nodeError("ECONNREFUSED"), nodeError("ECONNREFUSED")],
      "",
    );
    const nested = new ConnectError(
      "x",
      Code.Unavailable,
      undefined,
      undefined,
      new Error("wrap", { cause: aggregate }),
    );
    expect(describeError(nested, { baseUrl: URL })).toBe(refused);
    expect(describeError(nodeError("ECONNREFUSED"), { baseUrl: URL })).toBe(refused);
    expect(
      describeError(
        new ConnectError(
          "getaddrinfo",
          Code.Unavailable,
          undefined,
          undefined,
          nodeError("ENOTFOUND"),
        ),
        { baseUrl: "http://nohost:1" },
      ),
    ).toBe("cannot resolve the host of http://nohost:1: check --url or VOXGATE_URL");
  });

  it("words a connection dropped mid-request apart from a gateway failure", () => {
    const write = new ConnectError(
      "write EPIPE",
      Code.Internal,
      undefined,
      undefined,
      nodeError("EPIPE"),
    );
    expect(describeError(write, { baseUrl: URL })).toBe(
      `the gateway at ${URL} closed the connection before answering (EPIPE): often a refused token (check VOXGATE_TOKEN or --token) or a request over its limits`,
    );
    const reset = new ConnectError(
      "read ECONNRESET",
      Code.Aborted,
      undefined,
      undefined,
      nodeError("ECONNRESET"),
    );
    expect(describeError(reset, { baseUrl: URL })).toMatch(
      /closed the connection before answering \(ECONNRESET\)/,
    );
  });

  it("words a real refused connection from the client", async () => {
    // Take a free port, then close it so nothing listens there.
    const server = net.createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as net.AddressInfo;
    server.close();
    await once(server, "close");
    const baseUrl = `http://127.0.0.1:${port}`;
    for (const httpVersion of ["1.1", "2"] as const) {
      const client = createVoxgateClient({ baseUrl, httpVersion });
      const error = await client.health.check({}).catch((e: unknown) => e);
      client.close();
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unavailable);
      expect(describeError(error, { baseUrl })).toBe(
        `cannot reach the gateway at ${baseUrl} — is it running? (npm start)`,
      );
    }
  });

  it("uses the message of other errors and never a stack", () => {
    expect(describeError(new CliError("cannot write a.wav: permission denied"))).toBe(
      "cannot write a.wav: permission denied",
    );
    expect(describeError(new Error("plain"))).toBe("plain");
    expect(describeError("a string")).toBe("a string");
  });
});

describe("usage errors", () => {
  it("turns util.parseArgs errors into CliUsageError", () => {
    const parse = () =>
      parseFlags({ args: ["--nope"], strict: true, options: { yes: { type: "boolean" } } });
    expect(parse).toThrow(CliUsageError);
    expect(parse).toThrow(/Unknown option '--nope'/);
    let raw: unknown;
    try {
      parse();
    } catch (error) {
      raw = (error as Error).cause;
    }
    expect(isParseArgsError(raw)).toBe(true);
    expect(isParseArgsError(new Error("x"))).toBe(false);
  });
});
