import * as grpc from "@grpc/grpc-js";
import type { TlsFiles, TlsMaterial } from "./tls-files.js";

/**
 * grpc-js server credentials that follow {@link TlsFiles}: each reload swaps the secure context of
 * the port's HTTP/2 server (`setSecureContext`), so new connections get the new certificate while
 * established connections, and the streams on them, keep theirs.
 *
 * grpc-js's own `ServerCredentials.createSsl` is fixed at bind time. Its base class, though, keeps
 * a list of watchers (one per bound port) and calls them from `updateSecureContextOptions`, which
 * is how its experimental certificate-provider credentials reload; this subclass drives that same
 * hook directly, from files voxgate already watches.
 *
 * With a client CA the port asks for client certificates but does not refuse a handshake without
 * one: the agent port refuses such calls itself with UNAUTHENTICATED and a message that says what
 * is wrong, which a TLS alert cannot.
 */
export class ReloadingServerCredentials extends grpc.ServerCredentials {
  readonly #unsubscribe: () => void;

  constructor(files: TlsFiles) {
    const requestCert = files.current.ca !== undefined;
    super({ requestCert, rejectUnauthorized: false }, contextOptions(files.current));
    this.#unsubscribe = files.onChange((material) => {
      this.updateSecureContextOptions(contextOptions(material));
    });
  }

  /** Credentials are equal only to themselves: each instance follows its own files. */
  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }

  /** Stops following the files. */
  dispose(): void {
    this.#unsubscribe();
  }
}

function contextOptions(material: TlsMaterial) {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca ? { ca: material.ca } : {}),
  };
}
