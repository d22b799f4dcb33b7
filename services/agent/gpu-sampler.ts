/**
 * Reads the GPUs of an agent's host in the background, for heartbeats: from an engine whose model
 * server reports them (the Tinybox node's `/v1/metrics`), else from `nvidia-smi` when it is on
 * PATH, else nothing. A slow or failing source never delays a heartbeat: heartbeats send the
 * latest sample.
 */
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import type { Logger } from "pino";
import type { GpuReport, TtsEngine } from "../engines/tts-engine.js";

/** The `nvidia-smi` query of every GPU (CSV, no header, no units). */
export const NVIDIA_SMI_GPU_QUERY = [
  "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,power.draw,temperature.gpu",
  "--format=csv,noheader,nounits",
] as const;

/** The `nvidia-smi` query of the processes holding GPU memory. */
export const NVIDIA_SMI_APPS_QUERY = [
  "--query-compute-apps=pid,process_name,used_memory",
  "--format=csv,noheader,nounits",
] as const;

/** Most processes reported. */
export const MAX_GPU_PROCESSES = 12;

/** Options of {@link createGpuSampler}. */
export interface GpuSamplerOptions {
  /** The agent's engines; the first with `gpuReport` is the source when there is one. */
  engines: readonly TtsEngine[];
  /** Interval between samples, in ms; 0 turns sampling off. */
  intervalMs: number;
  /** `PATH` to look for `nvidia-smi` in. @default process.env.PATH at the entrypoint */
  path: string;
  /** Logger for source failures (once per kind of failure). */
  log?: Logger;
}

/** Background GPU sampling. */
export interface GpuSampler {
  /** The latest sample; empty until the first one is in. */
  latest(): GpuReport;
  /** Takes one sample now (also what the timer runs). */
  sample(): Promise<GpuReport>;
  /** Stops the timer; idempotent. */
  stop(): void;
}

/** Creates the sampler and starts its timer (unless `intervalMs` is 0). */
export function createGpuSampler(options: GpuSamplerOptions): GpuSampler {
  let latest: GpuReport = { gpus: [], processes: [] };
  let smi: Promise<string | undefined> | undefined;
  const warned = new Set<string>();
  const engine = options.engines.find((e) => e.gpuReport);
  const warn = (what: string, err: unknown) => {
    if (warned.has(what)) return;
    warned.add(what);
    options.log?.warn({ err: { message: (err as Error).message } }, what);
  };

  const sample = async (): Promise<GpuReport> => {
    try {
      if (engine?.gpuReport) {
        latest = await engine.gpuReport(AbortSignal.timeout(5000));
        return latest;
      }
      smi ??= findOnPath("nvidia-smi", options.path);
      const bin = await smi;
      if (!bin) return latest;
      const [gpus, apps] = await Promise.all([
        run(bin, NVIDIA_SMI_GPU_QUERY),
        run(bin, NVIDIA_SMI_APPS_QUERY).catch(() => ""),
      ]);
      latest = { gpus: parseGpuCsv(gpus), processes: parseAppsCsv(apps) };
    } catch (err) {
      warn("could not read the GPUs", err);
    }
    return latest;
  };

  let timer: NodeJS.Timeout | undefined;
  if (options.intervalMs > 0) {
    void sample();
    timer = setInterval(() => void sample(), options.intervalMs);
    timer.unref();
  }
  return {
    latest: () => latest,
    sample,
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}

/** Parses `nvidia-smi --query-gpu=…` CSV; `[N/A]` and unparsable figures are left out. */
export function parseGpuCsv(text: string): GpuReport["gpus"] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .slice(0, 64)
    .map((line, i) => {
      const [index, name, util, used, total, power, temp] = line.split(",").map((f) => f.trim());
      const gpu: GpuReport["gpus"][number] = {
        index: figure(index) ?? i,
        name: (name ?? "").slice(0, 128),
      };
      assign(gpu, "utilizationPercent", figure(util));
      assign(gpu, "memoryUsedMib", figure(used));
      assign(gpu, "memoryTotalMib", figure(total));
      assign(gpu, "powerWatts", figure(power));
      assign(gpu, "temperatureC", figure(temp));
      return gpu;
    });
}

/** Parses `nvidia-smi --query-compute-apps=…` CSV, biggest GPU memory first. */
export function parseAppsCsv(text: string): GpuReport["processes"] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [pid, name, used] = line.split(",").map((f) => f.trim());
      const proc: GpuReport["processes"][number] = {
        pid: figure(pid) ?? 0,
        name: (name ?? "").slice(0, 128),
      };
      assign(proc, "gpuMemoryMib", figure(used));
      return proc;
    })
    .sort((a, b) => (b.gpuMemoryMib ?? 0) - (a.gpuMemoryMib ?? 0))
    .slice(0, MAX_GPU_PROCESSES);
}

function figure(text: string | undefined): number | undefined {
  if (!text || !/^-?\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}

function assign<T extends object>(target: T, key: keyof T, value: number | undefined): void {
  if (value !== undefined) (target as Record<keyof T, unknown>)[key] = value;
}

async function findOnPath(name: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

function run(bin: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { timeout: 5000, maxBuffer: 1024 * 1024 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
  });
}
