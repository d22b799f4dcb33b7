/** Where an agent dials: a gRPC target and whether the link is TLS. */
export interface GatewayTarget {
  /** `host:port` (IPv6 in brackets), as grpc-js takes it. */
  address: string;
  /** Dial TLS (an `https://` address). */
  tls: boolean;
}

const HOST_PORT = /^([^\s:/@[\]]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/;

/**
 * Parses the agent's `--gateway` value: `https://HOST[:PORT]` dials TLS (port 443 by default);
 * `http://HOST[:PORT]` (port 80 by default) and the older bare `HOST:PORT` dial cleartext gRPC.
 * A path, query, fragment or credentials in the URL are refused: the agent port serves the root.
 *
 * @throws Error saying which form is expected.
 */
export function parseGatewayAddress(text: string): GatewayTarget {
  const expected =
    "must be https://HOST:PORT (TLS), http://HOST:PORT or HOST:PORT (cleartext), e.g. https://gateway.example.com:8081";
  const bare = HOST_PORT.exec(text);
  if (bare) return { address: checkPort(text, bare[1] ?? "", bare[2] ?? "", expected), tls: false };
  const scheme = /^(https?):\/\/(.*)$/i.exec(text);
  if (!scheme) throw new Error(expected);
  const tls = (scheme[1] ?? "").toLowerCase() === "https";
  const rest = (scheme[2] ?? "").replace(/\/$/, "");
  const withPort = HOST_PORT.exec(rest);
  if (withPort) {
    return { address: checkPort(text, withPort[1] ?? "", withPort[2] ?? "", expected), tls };
  }
  if (/^([^\s:/@?#[\]]+|\[[0-9a-fA-F:.]+\])$/.test(rest)) {
    return { address: `${rest}:${tls ? 443 : 80}`, tls };
  }
  throw new Error(expected);
}

function checkPort(text: string, host: string, port: string, expected: string): string {
  const n = Number(port);
  if (n < 1 || n > 65_535) throw new Error(`port of "${text}" is out of range; ${expected}`);
  return `${host}:${n}`;
}
