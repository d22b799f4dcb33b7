import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { trustedCaCertificates } from "./trust-store.js";

/** TLS settings of a gRPC client (the agent's link to the gateway). */
export interface ClientTlsOptions {
  /** More CA certificates to trust (PEM file), besides the system store and NODE_EXTRA_CA_CERTS. */
  caFile?: string | undefined;
  /** Client certificate chain (PEM file) for a server that asks for one (mTLS). */
  clientCertFile?: string | undefined;
  /** Private key (PEM file) of the client certificate. */
  clientKeyFile?: string | undefined;
}

/** What a TLS handshake showed of the server, for logs. */
export interface ServerCertificateSeen {
  /** SHA-256 fingerprint of the server's leaf certificate. */
  fingerprint256: string;
  /** Its subject CN, if any. */
  subject: string;
}

/**
 * Builds grpc-js channel credentials from files, read now: a new link made with fresh credentials
 * picks up rotated files. `onServerCertificate` sees each server certificate that passed
 * verification (hostname included), so the caller can log which one it got.
 *
 * @throws Error naming a file that cannot be read, or a key that does not match its certificate.
 */
export function createClientChannelCredentials(
  options: ClientTlsOptions,
  onServerCertificate?: (seen: ServerCertificateSeen) => void,
): grpc.ChannelCredentials {
  if (Boolean(options.clientCertFile) !== Boolean(options.clientKeyFile)) {
    throw new Error("a client certificate needs its key and the reverse: set both files");
  }
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the ${what} ${path}: ${(err as Error).message}`);
    }
  };
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({
      ca: trustedCaCertificates(options.caFile),
      ...(options.clientCertFile && options.clientKeyFile
        ? {
            cert: read(options.clientCertFile, "client certificate"),
            key: read(options.clientKeyFile, "client key"),
          }
        : {}),
    });
  } catch (err) {
    throw new Error(`TLS settings of the gateway link: ${(err as Error).message}`);
  }
  return grpc.credentials.createFromSecureContext(context, {
    // This replaces Node's host name check (whatever grpc-js's doc says), so it runs it first.
    checkServerIdentity(host, cert) {
      const error = tls.checkServerIdentity(host, cert);
      if (error) return error;
      onServerCertificate?.({
        fingerprint256: cert.fingerprint256,
        subject: String(cert.subject?.CN ?? ""),
      });
      return undefined;
    },
  });
}
