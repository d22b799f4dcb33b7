/**
 * Process safety with real gateway processes: a port that cannot be bound ends the process at
 * once (non-zero, the port named, nothing left listening), and the embedded data directory is
 * locked (a second gateway refuses to start naming the holder's pid; a stale lock is taken over).
 */
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kDataDirLockFile } from "../../services/database/data-dir-lock.js";
import { spawnVoxgate } from "../helpers/voxgate-process.js";
import { startGatewayProcess } from "../helpers/voxgate-stack.js";

/** Generous: the process exits as soon as it has read its settings and tried the port. */
const EXIT_WITHIN_MS = 30_000;

async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, "0.0.0.0");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

/** Resolves with the exit code, or fails when the process is still running after `ms`. */
async function exitWithin(proc: ReturnType<typeof spawnVoxgate>, ms: number) {
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), ms);
  try {
    return await proc.exited();
  } finally {
    clearTimeout(timer);
  }
}

describe("process safety", { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const which of ["public", "agent"] as const) {
    it(`exits 1 at once, naming the port, when the ${which} port is taken`, async () => {
      const { server, port } = await occupyPort();
      try {
        const gateway = spawnVoxgate(["gateway"], {
          VOXGATE_PORT: which === "public" ? String(port) : "0",
          VOXGATE_AGENT_PORT: which === "agent" ? String(port) : "0",
        });
        const code = await exitWithin(gateway, EXIT_WITHIN_MS);
        expect(code, gateway.stderr()).toBe(1);
        expect(gateway.stderr()).toMatch(
          new RegExp(
            `cannot listen on the ${which} port [^ ]*:${port}: the port is already in use`,
          ),
        );
        // It never said it was ready: a supervisor saw a failed start, not half a gateway.
        expect(gateway.logs.some((l) => l.msg === "gateway ready")).toBe(false);
      } finally {
        server.close();
      }
    });
  }

  it("locks the embedded data directory: a second gateway refuses naming the holder's pid", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "voxgate-lock-"));
    dirs.push(dataDir);
    const first = await startGatewayProcess({ env: { VOXGATE_DATA_DIR: dataDir } });
    try {
      const holder = first.proc.child.pid;
      expect(readFileSync(join(dataDir, kDataDirLockFile), "utf8").trim()).toBe(String(holder));
      const second = spawnVoxgate(["gateway"], {
        VOXGATE_PORT: "0",
        VOXGATE_AGENT_PORT: "0",
        VOXGATE_DATA_DIR: dataDir,
      });
      expect(await exitWithin(second, EXIT_WITHIN_MS), second.stderr()).toBe(1);
      expect(second.stderr()).toContain(`data directory ${dataDir} is in use by process ${holder}`);
    } finally {
      expect(await first.proc.stop()).toBe(0);
    }
    // A clean stop gives the lock back.
    expect(() => readFileSync(join(dataDir, kDataDirLockFile))).toThrow(/ENOENT/);
  });

  it("takes over a stale lock left by a process that is gone", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "voxgate-lock-"));
    dirs.push(dataDir);
    // The pid of a process that has exited: a gateway killed with SIGKILL leaves such a lock.
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    writeFileSync(join(dataDir, kDataDirLockFile), `${dead}\n`);
    const gateway = await startGatewayProcess({ env: { VOXGATE_DATA_DIR: dataDir } });
    try {
      expect(readFileSync(join(dataDir, kDataDirLockFile), "utf8").trim()).toBe(
        String(gateway.proc.child.pid),
      );
    } finally {
      expect(await gateway.proc.stop()).toBe(0);
    }
  });
});
