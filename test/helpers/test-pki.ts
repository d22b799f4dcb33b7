/**
 * A throwaway PKI for TLS tests, made at run time with openssl (no private key is committed):
 * a CA, server certificates for 127.0.0.1/localhost and client certificates for agent ids.
 * EC P-256 keys keep each certificate well under 100 ms to make.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A certificate and its key on disk. */
export interface TestCert {
  /** Certificate file (PEM). */
  certFile: string;
  /** Private key file (PEM). */
  keyFile: string;
  /** SHA-256 fingerprint of the certificate, as Node's `fingerprint256` writes it. */
  fingerprint256: string;
}

/** A CA able to sign test certificates. */
export interface TestCa extends TestCert {
  /** Directory the files live in. */
  dir: string;
  /** Name used in file names and the CA's CN. */
  name: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

/** Makes a self-signed CA `<name>` in `dir`. */
export function createTestCa(dir: string, name: string): TestCa {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      keyFile,
      "-sha256",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      certFile,
    ],
    dir,
  );
  return { dir, name, keyFile, certFile, fingerprint256: fingerprintOf(certFile) };
}

/** Options of {@link issueCert}. */
export interface IssueOptions {
  /** File name stem. */
  name: string;
  /** Subject CN. */
  cn: string;
  /** subjectAltName entries, e.g. `["DNS:localhost", "IP:127.0.0.1"]`. @default none */
  altNames?: string[];
  /** Client certificate (extendedKeyUsage clientAuth) instead of a server one. @default false */
  client?: boolean;
}

/** Issues a certificate signed by `ca`, written to `ca.dir`. */
export function issueCert(ca: TestCa, options: IssueOptions): TestCert {
  const { dir } = ca;
  const keyFile = join(dir, `${options.name}.key`);
  const csrFile = join(dir, `${options.name}.csr`);
  const certFile = join(dir, `${options.name}.crt`);
  const extFile = join(dir, `${options.name}.ext`);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile], dir);
  openssl(["req", "-new", "-key", keyFile, "-subj", `/CN=${options.cn}`, "-out", csrFile], dir);
  writeFileSync(
    extFile,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      `extendedKeyUsage=${options.client ? "clientAuth" : "serverAuth"}`,
      ...(options.altNames?.length ? [`subjectAltName=${options.altNames.join(",")}`] : []),
    ].join("\n"),
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      "-CAcreateserial",
      "-sha256",
      "-days",
      "2",
      "-extfile",
      extFile,
      "-out",
      certFile,
    ],
    dir,
  );
  return { certFile, keyFile, fingerprint256: fingerprintOf(certFile) };
}

/** A server certificate for `127.0.0.1` and `localhost`. */
export function issueServerCert(ca: TestCa, name: string): TestCert {
  return issueCert(ca, { name, cn: "localhost", altNames: ["DNS:localhost", "IP:127.0.0.1"] });
}
