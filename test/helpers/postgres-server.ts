import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A throwaway PostgreSQL server on 127.0.0.1, started from the machine's server binaries. */
export interface PostgresServer {
  /** Connection URL of the `postgres` database as the `postgres` superuser (trust auth). */
  url: string;
  /** Creates an empty database and returns its URL (one per test keeps tests apart). */
  createDatabase(name: string): Promise<string>;
  /** Port on 127.0.0.1. */
  port: number;
  /**
   * Sends `signal` to the server and every process it started (postmaster and backends), e.g.
   * SIGSTOP/SIGCONT to hang and resume it, SIGKILL to crash it (fault tests).
   */
  signal(signal: NodeJS.Signals): void;
  /** Resolves once the server process has exited (after a SIGKILL, say). */
  exited(): Promise<void>;
  /** Starts the server again on the same port and data (after it was killed); resolves when ready. */
  restart(): Promise<void>;
  /** Stops the server (fast shutdown) and deletes its files; idempotent. */
  stop(): Promise<void>;
}

/** Directory holding `initdb` and `postgres`, newest major version first; undefined when absent. */
export function findPostgresBinDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : undefined;
}

/**
 * Sends `signal` to the postmaster `pid` and to each of its children (backends and helpers call
 * setsid, so a process-group signal would miss them).
 */
function signalServer(pid: number, signal: NodeJS.Signals): void {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command: state, ppid, …
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  // Stop the postmaster first (no new children), wake it last.
  const order = signal === "SIGCONT" ? [...children, pid] : [pid, ...children];
  for (const target of order) {
    try {
      process.kill(target, signal);
    } catch {
      // already gone
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Runs initdb and starts `postgres` in a temporary directory. initdb refuses to run as root, so
 * as root the server runs as the `postgres` system user (created by the Debian package).
 *
 * @throws Error when no PostgreSQL server binaries are installed (`apt-get install postgresql`).
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = findPostgresBinDir();
  if (!bin) throw new Error("PostgreSQL server binaries not found: apt-get install -y postgresql");
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "voxgate-pg-"));
  const dataDir = join(dir, "data");
  // Spawned directly with uid/gid (not through runuser) so signals reach postgres itself.
  const user: { uid?: number; gid?: number } = {};
  if (asRoot) {
    user.uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    user.gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, user.uid, user.gid);
  }

  execFileSync(
    join(bin, "initdb"),
    ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
    { stdio: "pipe", cwd: dir, ...user },
  );
  const port = await freePort();
  const args = [
    "-D",
    dataDir,
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=200",
  ];
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const isReady = join(bin, "pg_isready");
  /** Spawns postgres in its own process group (a Ctrl-C of the test run does not reach it). */
  const launch = async (): Promise<ChildProcess> => {
    const started: ChildProcess = spawn(join(bin, "postgres"), args, {
      stdio: ["ignore", "ignore", "pipe"],
      cwd: dir,
      detached: true,
      ...user,
    });
    let stderr = "";
    started.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        execFileSync(isReady, ["-h", "127.0.0.1", "-p", String(port), "-q"]);
        return started;
      } catch {
        if (started.exitCode !== null || Date.now() > deadline) {
          started.kill("SIGKILL");
          throw new Error(`postgres did not start: ${stderr.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  let proc: ChildProcess;
  try {
    proc = await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const exited = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    signal(signal) {
      if (proc.pid !== undefined) signalServer(proc.pid, signal);
    },
    exited: () => exited(proc),
    async restart() {
      await exited(proc);
      proc = await launch();
    },
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
      execFileSync(join(bin, "psql"), [url, "-q", "-c", `CREATE DATABASE ${name}`]);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (proc.exitCode !== null || proc.signalCode !== null) return done();
        proc.once("exit", done);
        // A stopped server cannot shut down: wake it first.
        if (proc.pid !== undefined) signalServer(proc.pid, "SIGCONT");
        proc.kill("SIGINT"); // fast shutdown: roll back open transactions and exit
      });
      return stopping;
    },
  };
}
