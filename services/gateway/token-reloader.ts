import { stat } from "node:fs/promises";
import type { Logger } from "pino";
import type { TokenEntry } from "../auth/token-store.js";

/** Options of {@link createTokenReloader}. */
export interface TokenReloaderOptions {
  /** Files the tokens come from (the config file, the tokens file); polled for changes. */
  files: readonly string[];
  /**
   * Interval the files' metadata (size, mtime, inode) is checked at, in ms; 0 = only on
   * {@link TokenReloader.reload} (SIGHUP). @default 2000
   */
  pollIntervalMs?: number;
  /** Reads every token afresh; throws when a source is invalid. */
  load(): TokenEntry[];
  /** Puts tokens in force; throws (changing nothing) when they are invalid. */
  apply(tokens: readonly TokenEntry[]): void;
  /** Logger. */
  log: Logger;
}

/** Reloads the gateway's tokens on demand and when their files change. */
export interface TokenReloader {
  /**
   * Reads the tokens again and puts them in force. An invalid source (a half-written file, bad
   * JSON, a bad entry) is logged as an error and the tokens in force are kept. Returns whether the
   * new tokens were applied.
   */
  reload(why: string): boolean;
  /** Stops polling. Idempotent. */
  close(): void;
}

/**
 * Creates the token reloader: tokens change without a restart, on SIGHUP (the caller calls
 * {@link TokenReloader.reload}) and when one of `files` changes.
 */
export function createTokenReloader(options: TokenReloaderOptions): TokenReloader {
  const log = options.log.child({ component: "tokens" });
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const reload = (why: string) => {
    let tokens: TokenEntry[];
    try {
      tokens = options.load();
      options.apply(tokens);
    } catch (err) {
      log.error(
        { why, err: err instanceof Error ? err.message : String(err) },
        "tokens not reloaded: keeping the previous tokens",
      );
      return false;
    }
    log.info({ why, tokens: tokens.length }, "tokens in force");
    return true;
  };

  /** What identifies a file's version: a rewrite in place or a rename over it changes it. */
  const statKey = async () => {
    const keys = await Promise.all(
      options.files.map((file) =>
        stat(file).then(
          (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
          (err: NodeJS.ErrnoException) => err.code ?? "error",
        ),
      ),
    );
    return keys.join("|");
  };

  let timer: NodeJS.Timeout | undefined;
  if (pollIntervalMs > 0 && options.files.length > 0) {
    let last: string | undefined;
    let checking = false;
    void statKey().then((key) => {
      last = key;
    });
    timer = setInterval(() => {
      if (checking) return;
      checking = true;
      void statKey()
        .then((key) => {
          if (last !== undefined && key !== last) reload("a tokens source file changed");
          last = key;
        })
        .finally(() => {
          checking = false;
        });
    }, pollIntervalMs);
    timer.unref();
  }

  return {
    reload,
    close() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
