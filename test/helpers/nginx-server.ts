/**
 * Test helper: nginx (the Debian package) in front of gateway replicas, started unprivileged from
 * the config under test/nginx/ with every path in a temporary directory.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running nginx. */
export interface NginxServer {
  /** Public base URL, `https://127.0.0.1:PORT`. */
  url: string;
  /** Bound port. */
  port: number;
  /** The error log so far (for failure messages). */
  errorLog(): string;
  /** Stops nginx (`-s stop`) and deletes its directory; idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Replica public ports, `host:port`. */
  upstreams: readonly string[];
  /** Server certificate and key (PEM files). */
  certFile: string;
  keyFile: string;
}

const CONFIG_TEMPLATE = new URL("../nginx/voxgate-lb.conf", import.meta.url);

/** Path of the nginx binary, or undefined when it is not installed. */
export function findNginx(): string | undefined {
  for (const path of ["/usr/sbin/nginx", "/usr/bin/nginx"]) if (existsSync(path)) return path;
  return undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === "object" && address ? address.port : 0;
}

/** Starts nginx with the test config and waits until it accepts connections. */
export async function startNginx(options: NginxOptions): Promise<NginxServer> {
  const binary = findNginx();
  if (!binary) throw new Error("nginx is not installed (apt-get install nginx)");
  const prefix = mkdtempSync(join(tmpdir(), "voxgate-nginx-"));
  const port = await freePort();
  const config = readFileSync(CONFIG_TEMPLATE, "utf8")
    .replaceAll("{{PREFIX}}", prefix)
    .replaceAll("{{PORT}}", String(port))
    .replaceAll("{{CERT}}", options.certFile)
    .replaceAll("{{KEY}}", options.keyFile)
    .replaceAll(
      "{{UPSTREAMS}}",
      options.upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=2s;`).join("\n"),
    );
  const configFile = join(prefix, "nginx.conf");
  writeFileSync(configFile, config);
  execFileSync(binary, ["-c", configFile, "-p", prefix], { stdio: ["ignore", "ignore", "pipe"] });
  const errorLog = () => {
    try {
      return readFileSync(join(prefix, "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  let stopped = false;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    errorLog,
    async stop() {
      if (stopped) return;
      stopped = true;
      const pidFile = join(prefix, "nginx.pid");
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : 0;
      try {
        execFileSync(binary, ["-c", configFile, "-p", prefix, "-s", "stop"], { stdio: "ignore" });
      } catch {
        if (pid > 0) process.kill(pid, "SIGKILL");
      }
      // Wait for the master to be gone before deleting its files.
      for (let i = 0; i < 100 && pid > 0; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
