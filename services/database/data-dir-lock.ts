import { mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Name of the lock file inside a data directory. */
export const kDataDirLockFile = "voxgate.lock";

/** A held lock on a data directory. */
export interface DataDirLock {
  /** The lock file. */
  readonly path: string;
  /** Removes the lock file if it is still this process's. Idempotent. */
  release(): Promise<void>;
}

/** Another live process holds the data directory. */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  /** Pid of the process holding the lock. */
  readonly holderPid: number;

  constructor(message: string, holderPid: number) {
    super(message);
    this.holderPid = holderPid;
  }
}

/** Reports whether `error` is a {@link DataDirLockedError}. */
export function isDataDirLockedError(error: unknown): error is DataDirLockedError {
  return error instanceof DataDirLockedError;
}

/**
 * Takes the lock of a data directory whose embedded database one process may open: creates
 * `<dir>/voxgate.lock` holding this process's pid, exclusively. A lock left by a process that is
 * gone (its pid no longer runs, or now runs something that is not Node) is taken over; one held
 * by a live process fails with {@link DataDirLockedError} naming its pid. Two gateways that
 * share state use PostgreSQL instead.
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, kDataDirLockFile);
  const mine = `${process.pid}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, mine, { flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      if (
        Number.isInteger(holder) &&
        holder > 0 &&
        holder !== process.pid &&
        (await alive(holder))
      ) {
        throw new DataDirLockedError(
          `data directory ${dir} is in use by process ${holder} (lock file ${path}); ` +
            "stop that process, give this one another VOXGATE_DATA_DIR, or share state through " +
            "PostgreSQL (VOXGATE_DATABASE_URL)",
          holder,
        );
      }
      // Stale (its process is gone) or unreadable: take it over.
      await unlink(path).catch(() => {});
      continue;
    }
    // Two processes taking over the same stale lock at once: only the one whose pid stayed wins.
    if ((await readFile(path, "utf8").catch(() => "")) === mine) {
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          if ((await readFile(path, "utf8").catch(() => "")) === mine) {
            await unlink(path).catch(() => {});
          }
        },
      };
    }
  }
  throw new Error(`could not take the lock ${path}: other processes keep taking it`);
}

/** Whether `pid` runs a Node process now (a reused pid running something else does not count). */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else; still a live holder.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  // Without /proc (macOS) the pid check is all there is.
  return cmdline === undefined || /node|voxgate/.test(cmdline);
}
