import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import type { Logger } from "pino";

/** PEM bytes of one TLS identity: certificate chain, private key and, for mTLS, the client CA. */
export interface TlsMaterial {
  /** Certificate chain, leaf first (PEM). */
  cert: Buffer;
  /** Private key of the leaf (PEM). */
  key: Buffer;
  /** CA certificates that sign acceptable client certificates (PEM); absent: no client certs. */
  ca?: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, `AB:CD:…` as Node's `fingerprint256` writes it. */
  fingerprint256: string;
}

/** Paths of the files {@link createTlsFiles} reads. */
export interface TlsFilePaths {
  /** Certificate chain file (PEM). */
  certFile: string;
  /** Private key file (PEM). */
  keyFile: string;
  /** Client CA file (PEM), for mTLS. */
  caFile?: string | undefined;
}

/** Options of {@link createTlsFiles}. */
export interface TlsFilesOptions extends TlsFilePaths {
  /** What these files are for, in log lines and errors ("public port", "agent port"). */
  purpose: string;
  /**
   * Interval at which the files' metadata is checked for changes, in ms; 0 = only on
   * {@link TlsFiles.reload} (SIGHUP). @default 2000
   */
  pollIntervalMs?: number;
  /** Logger. */
  log: Logger;
}

/** TLS files kept loaded: {@link TlsFiles.current} is always a valid, matching cert and key. */
export interface TlsFiles {
  /** The material in use. */
  readonly current: TlsMaterial;
  /** Calls `listener` with new material after each successful reload; returns an unsubscribe. */
  onChange(listener: (material: TlsMaterial) => void): () => void;
  /**
   * Reads the files again and switches to them when they changed and are valid; a broken set (a
   * key that does not match its certificate, a half-written file) is logged and the old material
   * kept. Resolves with whether the material changed.
   */
  reload(): Promise<boolean>;
  /** Stops polling. Idempotent. */
  close(): void;
}

/** Raised when TLS files cannot be read or do not make a valid identity. */
export class TlsFilesError extends Error {
  override readonly name = "TlsFilesError";
}

/** Returns whether `err` is a {@link TlsFilesError}. */
export function isTlsFilesError(err: unknown): err is TlsFilesError {
  return err instanceof TlsFilesError;
}

/**
 * Loads a certificate, its key and an optional client CA from files now (throwing a
 * {@link TlsFilesError} that names the file when one is missing or invalid, so a misconfigured
 * process fails at start), then watches them: a change of any file's size, mtime or inode (an
 * atomic rename, a Kubernetes secret swap) reloads the set, and so does {@link TlsFiles.reload}.
 * Files are polled rather than watched with inotify because renames and symlink swaps escape
 * `fs.watch` on a single file.
 */
export function createTlsFiles(options: TlsFilesOptions): TlsFiles {
  const log = options.log.child({ component: "tls-files", purpose: options.purpose });
  const paths = [options.certFile, options.keyFile, ...(options.caFile ? [options.caFile] : [])];
  const read = (path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new TlsFilesError(`${options.purpose}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  let current = checkMaterial(
    options.purpose,
    options,
    read(options.certFile),
    read(options.keyFile),
    options.caFile ? read(options.caFile) : undefined,
  );
  const listeners = new Set<(material: TlsMaterial) => void>();
  let lastStats = "";
  let reloading: Promise<boolean> | undefined;

  const statKey = async () =>
    (
      await Promise.all(
        paths.map((p) =>
          stat(p).then(
            (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
            () => "missing",
          ),
        ),
      )
    ).join("|");

  const reloadNow = async (): Promise<boolean> => {
    lastStats = await statKey();
    let next: TlsMaterial;
    try {
      const [cert, key, ca] = await Promise.all([
        readFile(options.certFile),
        readFile(options.keyFile),
        options.caFile ? readFile(options.caFile) : Promise.resolve(undefined),
      ]);
      next = checkMaterial(options.purpose, options, cert, key, ca);
    } catch (err) {
      log.error(
        { err, fingerprint256: current.fingerprint256 },
        "TLS files unreadable or invalid; keeping the certificate in use",
      );
      return false;
    }
    if (
      next.cert.equals(current.cert) &&
      next.key.equals(current.key) &&
      Buffer.compare(next.ca ?? Buffer.alloc(0), current.ca ?? Buffer.alloc(0)) === 0
    ) {
      return false;
    }
    const previous = current.fingerprint256;
    current = next;
    log.info(
      { fingerprint256: next.fingerprint256, previous },
      "TLS certificate reloaded; new connections use it",
    );
    for (const listener of listeners) listener(next);
    return true;
  };
  const reload = () => {
    reloading ??= reloadNow().finally(() => {
      reloading = undefined;
    });
    return reloading;
  };

  let timer: NodeJS.Timeout | undefined;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  if (pollIntervalMs > 0) {
    void statKey().then((key) => {
      lastStats = key;
    });
    timer = setInterval(() => {
      if (reloading) return;
      void statKey().then((key) => {
        if (key !== lastStats) void reload();
      });
    }, pollIntervalMs);
    timer.unref();
  }

  return {
    get current() {
      return current;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    reload,
    close() {
      clearInterval(timer);
      listeners.clear();
    },
  };
}

/** Validates a cert/key(/CA) set the way the TLS stack will use it; throws TlsFilesError. */
function checkMaterial(
  purpose: string,
  paths: TlsFilePaths,
  cert: Buffer,
  key: Buffer,
  ca: Buffer | undefined,
): TlsMaterial {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsFilesError(
      `${purpose}: ${paths.certFile} holds no PEM certificate: ${(err as Error).message}`,
    );
  }
  if (ca) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new TlsFilesError(
        `${purpose}: ${paths.caFile} holds no PEM CA certificate: ${(err as Error).message}`,
      );
    }
  }
  try {
    // Fails for a key that does not match the certificate (e.g. a half-finished rotation).
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    throw new TlsFilesError(
      `${purpose}: ${paths.keyFile} is not the private key of ${paths.certFile}: ${(err as Error).message}`,
    );
  }
  return { cert, key, ...(ca ? { ca } : {}), fingerprint256: leaf.fingerprint256 };
}
