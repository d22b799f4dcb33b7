import { readFileSync } from "node:fs";
import * as tls from "node:tls";

/** Where Debian, Ubuntu, Alpine and Arch keep the operating system's CA bundle. */
const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

type GetCaCertificates = (type: "default" | "system" | "bundled" | "extra") => string[];

/**
 * The CA certificates a voxgate client trusts by default: Node's bundled Mozilla roots, the
 * operating system's store, and the file `NODE_EXTRA_CA_CERTS` names. Node itself adds the OS
 * store only with `--use-system-ca`; and as soon as a caller passes its own `ca`, Node drops its
 * defaults, so a CA-file setting must be merged with this list rather than replace it.
 *
 * Node 22.15+ reads the stores itself (`tls.getCACertificates`); on Node 20 the OS bundle is read
 * from `SSL_CERT_FILE` or the usual distribution paths, and `NODE_EXTRA_CA_CERTS` from its file.
 */
export function defaultCaCertificates(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string[] {
  const getCaCertificates = (tls as unknown as { getCACertificates?: GetCaCertificates })
    .getCACertificates;
  const certs = new Set<string>(tls.rootCertificates);
  if (getCaCertificates) {
    for (const cert of getCaCertificates("system")) certs.add(cert);
    for (const cert of getCaCertificates("extra")) certs.add(cert);
    return [...certs];
  }
  const systemFiles = env.SSL_CERT_FILE ? [env.SSL_CERT_FILE] : SYSTEM_BUNDLES;
  for (const file of systemFiles) {
    const text = readOptional(file);
    if (text) {
      for (const cert of splitPem(text)) certs.add(cert);
      break;
    }
  }
  const extra = env.NODE_EXTRA_CA_CERTS ? readOptional(env.NODE_EXTRA_CA_CERTS) : undefined;
  for (const cert of splitPem(extra ?? "")) certs.add(cert);
  return [...certs];
}

/**
 * The CAs to trust for a server certificate: {@link defaultCaCertificates} plus those in `caFile`
 * (PEM, may hold several). Throws an Error naming the file when it cannot be read or holds none.
 */
export function trustedCaCertificates(
  caFile: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string[] {
  const certs = defaultCaCertificates(env);
  if (!caFile) return certs;
  let text: string;
  try {
    text = readFileSync(caFile, "utf8");
  } catch (err) {
    throw new Error(`cannot read CA file ${caFile}: ${(err as Error).message}`);
  }
  const extra = splitPem(text);
  if (extra.length === 0) throw new Error(`CA file ${caFile} holds no PEM certificate`);
  return [...certs, ...extra];
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
