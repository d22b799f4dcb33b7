/**
 * `GET /v1/metrics` in the shape StoryForge Cloud's UI reads (the Tinybox node's: `cpu_pct`,
 * `ram_used_mb`, `ram_total_mb`, `load`, `gpus[]`, `processes[]`), measured on the gateway host
 * with the `os` module and `/proc/meminfo`, plus what connected backends report in heartbeats
 * (their hosts' GPUs and top GPU processes).
 */
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { BackendKind } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { RegisteredBackend } from "../registry/backend.js";

/** One GPU as Cloud's UI shows it. */
export interface GpuMetrics {
  index: number;
  name: string;
  util_gpu_pct: number | null;
  util_mem_pct: number | null;
  vram_used_mb: number | null;
  vram_total_mb: number | null;
  power_w: number | null;
  temp_c: number | null;
  /** Backend (agent) the GPU belongs to; voxgate's addition. */
  backend: string;
}

/** One process row as Cloud's UI shows it. */
export interface ProcessMetrics {
  pid: number | null;
  name: string;
  cpu_pct: number;
  mem_pct: number | null;
  ram_mb: number | null;
  gpu_mem_mb: number | null;
  /** Time since start, `[[dd-]hh:]mm:ss` like `ps -o etime`. */
  elapsed: string;
  command: string;
  args: string;
}

/** The whole answer. */
export interface HostMetrics {
  ok: true;
  ts: number;
  cpu_pct: number;
  load: [number, number, number];
  ram_total_mb: number;
  ram_used_mb: number;
  gpu: GpuMetrics | null;
  gpus: GpuMetrics[];
  processes: ProcessMetrics[];
}

/** Reads metrics; keeps the previous CPU sample so `cpu_pct` covers the time between calls. */
export interface HostMetricsReader {
  /** Measures now; `backends` are the registry's entries. */
  read(backends: readonly Readonly<RegisteredBackend>[]): HostMetrics;
}

interface CpuSample {
  idle: number;
  total: number;
  at: number;
  processUs: number;
}

const MB = 1024 * 1024;

/** Creates a reader whose first `cpu_pct` covers the time since the gateway started. */
export function createHostMetricsReader(): HostMetricsReader {
  let previous: CpuSample = {
    idle: 0,
    total: 0,
    at: Date.now() - process.uptime() * 1000,
    processUs: 0,
  };
  return {
    read(backends) {
      const sample = cpuSample();
      const idle = sample.idle - previous.idle;
      const total = sample.total - previous.total;
      const wallMs = Math.max(1, sample.at - previous.at);
      const processPct = ((sample.processUs - previous.processUs) / 1000 / wallMs) * 100;
      previous = sample;
      const cpuPct = total > 0 ? round1(100 * (1 - idle / total)) : 0;
      const totalMb = Math.round(os.totalmem() / MB);
      const usedMb = Math.round(totalMb - availableMemoryBytes() / MB);
      const gpus = backends.flatMap(gpusOf);
      const rss = process.memoryUsage.rss();
      const processes: ProcessMetrics[] = [
        {
          pid: process.pid,
          name: "voxgate-gateway",
          cpu_pct: round1(processPct),
          mem_pct: round1((rss / os.totalmem()) * 100),
          ram_mb: Math.round(rss / MB),
          gpu_mem_mb: null,
          elapsed: etime(process.uptime() * 1000),
          command: "node",
          args: "voxgate gateway",
        },
        ...backends.map((backend): ProcessMetrics => {
          const load = backend.load;
          return {
            pid: null,
            name: `backend ${backend.id}`,
            cpu_pct: round1((load?.cpuRatio ?? 0) * 100),
            mem_pct: null,
            ram_mb: load?.rssBytes ? Math.round(Number(load.rssBytes) / MB) : null,
            gpu_mem_mb: load?.gpuMemoryUsedBytes
              ? Math.round(Number(load.gpuMemoryUsedBytes) / MB)
              : null,
            elapsed: etime(Date.now() - backend.connectedAt.getTime()),
            command: String(BackendKind[backend.kind] ?? backend.kind).toLowerCase(),
            args: backend.capabilities.engines.map((e) => e.id).join(","),
          };
        }),
        ...backends.flatMap(gpuProcessesOf),
      ];
      return {
        ok: true,
        ts: Math.floor(Date.now() / 1000),
        cpu_pct: cpuPct,
        load: os.loadavg().map(round2) as [number, number, number],
        ram_total_mb: totalMb,
        ram_used_mb: usedMb,
        gpu: gpus[0] ?? null,
        gpus,
        processes,
      };
    },
  };
}

function cpuSample(): CpuSample {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  const usage = process.cpuUsage();
  return { idle, total, at: Date.now(), processUs: usage.user + usage.system };
}

/** MemAvailable from /proc/meminfo (what `free` calls available); os.freemem() elsewhere. */
function availableMemoryBytes(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: fall back below.
  }
  return os.freemem();
}

/**
 * GPUs a backend reported in its heartbeats (`LoadReport.gpus`, from nvidia-smi or the model
 * server's own report), in the Tinybox node's field names. nvidia-smi's MiB are what the node
 * calls `_mb`. The node's `util_mem_pct` (memory controller load) has no counterpart: null.
 */
function gpusOf(backend: Readonly<RegisteredBackend>): GpuMetrics[] {
  const round = (v: number | undefined) => (v === undefined ? null : Math.round(v));
  return (backend.load?.gpus ?? []).map(
    (gpu): GpuMetrics => ({
      index: gpu.index,
      name: gpu.name || `gpu${gpu.index}`,
      util_gpu_pct: gpu.utilizationPercent ?? null,
      util_mem_pct: null,
      vram_used_mb: round(gpu.memoryUsedMib),
      vram_total_mb: round(gpu.memoryTotalMib),
      power_w: gpu.powerWatts ?? null,
      temp_c: gpu.temperatureC ?? null,
      backend: backend.id,
    }),
  );
}

/** The top GPU processes a backend's host reported, as process rows (`args` names the backend). */
function gpuProcessesOf(backend: Readonly<RegisteredBackend>): ProcessMetrics[] {
  return (backend.load?.gpuProcesses ?? []).map(
    (p): ProcessMetrics => ({
      pid: p.pid || null,
      name: p.name,
      cpu_pct: round1(p.cpuPercent ?? 0),
      mem_pct: null,
      ram_mb: null,
      gpu_mem_mb: p.gpuMemoryMib === undefined ? null : Math.round(p.gpuMemoryMib),
      elapsed: "",
      command: p.name,
      args: `on backend ${backend.id}`,
    }),
  );
}

/** `ps -o etime` style: `mm:ss`, `hh:mm:ss` or `dd-hh:mm:ss`. */
export function etime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, "0");
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3600);
  const mins = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  const hms =
    hours > 0 || days > 0 ? `${pad(hours)}:${pad(mins)}:${pad(secs)}` : `${pad(mins)}:${pad(secs)}`;
  return days > 0 ? `${days}-${hms}` : hms;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
