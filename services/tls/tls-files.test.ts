import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestCa,
  issueCert,
  issueServerCert,
  type TestCa,
} from "../../test/helpers/test-pki.js";
import { replaceCertFiles } from "../../test/helpers/tls-stack.js";
import { certificateIdentities } from "./cert-identity.js";
import { createTlsFiles, isTlsFilesError, type TlsMaterial } from "./tls-files.js";
import { defaultCaCertificates, trustedCaCertificates } from "./trust-store.js";

const log = pino({ level: "silent" });

describe("TLS files", () => {
  let dir: string;
  let ca: TestCa;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-tls-files-"));
    ca = createTestCa(dir, "ca");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads a matching set and refuses, at start, a key of another certificate naming both files", () => {
    const a = issueServerCert(ca, "a");
    const b = issueServerCert(ca, "b");
    const files = createTlsFiles({
      ...a,
      caFile: ca.certFile,
      purpose: "test",
      log,
      pollIntervalMs: 0,
    });
    expect(files.current.fingerprint256).toBe(a.fingerprint256);
    expect(files.current.ca?.equals(readFileSync(ca.certFile))).toBe(true);
    files.close();
    let error: unknown;
    try {
      createTlsFiles({ certFile: a.certFile, keyFile: b.keyFile, purpose: "test", log });
    } catch (err) {
      error = err;
    }
    expect(isTlsFilesError(error)).toBe(true);
    expect((error as Error).message).toContain(
      `${b.keyFile} is not the private key of ${a.certFile}`,
    );
    expect(() =>
      createTlsFiles({
        certFile: join(dir, "missing.crt"),
        keyFile: a.keyFile,
        purpose: "test",
        log,
      }),
    ).toThrow(/cannot read .*missing\.crt/);
  });

  it("notices changed files by polling, and keeps the old set while a rotation is half done", async () => {
    const live = issueServerCert(ca, "live");
    const next = issueServerCert(ca, "next");
    const seen: TlsMaterial[] = [];
    const files = createTlsFiles({ ...live, purpose: "test", log, pollIntervalMs: 50 });
    files.onChange((m) => seen.push(m));
    try {
      // Only the key so far: it does not match the certificate, so nothing changes.
      writeFileSync(live.keyFile, readFileSync(next.keyFile));
      await new Promise((r) => setTimeout(r, 400));
      expect(seen).toEqual([]);
      expect(files.current.fingerprint256).toBe(live.fingerprint256);
      writeFileSync(live.certFile, readFileSync(next.certFile));
      const deadline = Date.now() + 10_000;
      while (seen.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(seen.map((m) => m.fingerprint256)).toEqual([next.fingerprint256]);
      expect(files.current.fingerprint256).toBe(next.fingerprint256);
      // reload() with nothing new changes nothing.
      expect(await files.reload()).toBe(false);
    } finally {
      files.close();
    }
  });

  it("reload() picks up replaced files at once (SIGHUP) when polling is off", async () => {
    const live = issueServerCert(ca, "hup");
    const next = issueServerCert(ca, "hup-next");
    const files = createTlsFiles({ ...live, purpose: "test", log, pollIntervalMs: 0 });
    try {
      replaceCertFiles(next, live);
      expect(files.current.fingerprint256).toBe(live.fingerprint256);
      expect(await files.reload()).toBe(true);
      expect(files.current.fingerprint256).toBe(next.fingerprint256);
    } finally {
      files.close();
    }
  });

  it("reads a certificate's identities from its CN and DNS/URI SANs", () => {
    const cert = issueCert(ca, {
      name: "ids",
      cn: "gpu-1",
      altNames: ["DNS:gpu-1.example", "URI:spiffe://example.org/agent/gpu-7", "IP:10.0.0.1"],
      client: true,
    });
    const x509 = new X509Certificate(readFileSync(cert.certFile));
    const peer = {
      subject: { CN: "gpu-1" },
      subjectaltname: x509.subjectAltName,
    } as unknown as import("node:tls").PeerCertificate;
    expect(certificateIdentities(peer)).toEqual([
      "gpu-1",
      "gpu-1.example",
      "spiffe://example.org/agent/gpu-7",
      "gpu-7",
    ]);
  });

  it("trusts the default roots, NODE_EXTRA_CA_CERTS and a CA file together", () => {
    const other = createTestCa(dir, "other");
    const pem = (file: string) => readFileSync(file, "utf8").trim();
    const base = defaultCaCertificates({});
    expect(base.length).toBeGreaterThan(50);
    expect(base).not.toContain(pem(ca.certFile));
    const withExtra = trustedCaCertificates(other.certFile, { NODE_EXTRA_CA_CERTS: ca.certFile });
    if (!("getCACertificates" in tls)) {
      // Node 20 reads NODE_EXTRA_CA_CERTS itself here; newer Node reports what it loaded at start.
      expect(withExtra).toContain(pem(ca.certFile));
    }
    expect(withExtra).toContain(pem(other.certFile));
    expect(() => trustedCaCertificates(join(dir, "none.crt"))).toThrow(/cannot read CA file/);
    writeFileSync(join(dir, "empty.crt"), "not a certificate");
    expect(() => trustedCaCertificates(join(dir, "empty.crt"))).toThrow(/holds no PEM certificate/);
  });
});
