import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { EngineHost } from "../engine-host/index.js";
import { Agent, type AgentOptions } from "./agent.js";
import { parseGatewayAddress } from "./gateway-address.js";

/**
 * Life of a fleet:
 * - `idle`: created, `run()` not called;
 * - `running`: one session per gateway replica, following the address list;
 * - `draining`: takes no new work anywhere, finishing running calls;
 * - `stopped`: terminal.
 */
export type AgentFleetState = "idle" | "running" | "draining" | "stopped";

/** Options of {@link AgentFleet}: those of each {@link Agent} session, with several gateways. */
export interface AgentFleetOptions extends Omit<AgentOptions, "gatewayAddress"> {
  /**
   * Gateway agent ports: `host:port`, or a comma list of them. A host name that resolves to
   * several addresses gives one session per address (one per replica); names are resolved again
   * every `resolveIntervalMs`, so replicas that appear are joined and those gone are left.
   */
  gateways: string;
  /** Interval of resolving names again, in ms (setting gatewayResolveMs). */
  resolveIntervalMs: number;
  /**
   * Resolves a host name to IP addresses. @default `dns.lookup` with every address, IPv4 only
   * when there are IPv4 ones (dual-stack names would otherwise give two sessions per replica)
   */
  resolve?: (host: string) => Promise<string[]>;
  /** Wait before a session that ended (its gateway asked it to go) dials again, in ms. @default 1000 */
  rejoinDelayMs?: number;
}

interface Member {
  agent: Agent;
  run: Promise<void>;
  /** Set when the address is no longer wanted: the session drains and is not rejoined. */
  leaving: boolean;
}

/** One entry of the gateway list. */
interface GatewayEntry {
  host: string;
  port: string;
  /** Dial TLS (`https://`). */
  tls: boolean;
}

/**
 * An agent connected to every gateway replica: one {@link Agent} session per replica over the
 * shared engine host, so any replica can route to this GPU host with no hop between replicas.
 * The engine host's slots are the agent's own and hold across every session: a replica that finds
 * them taken by another replica's calls gets RESOURCE_EXHAUSTED and routes elsewhere or queues.
 */
export class AgentFleet {
  #state: AgentFleetState = "idle";
  readonly #options: AgentFleetOptions;
  readonly #log: Logger;
  readonly #entries: GatewayEntry[];
  readonly #members = new Map<string, Member>();
  readonly #sessionHost: EngineHost;
  readonly #stop = new AbortController();
  #runDone: Promise<void> | undefined;
  #draining: Promise<void> | undefined;

  /** @throws Error when `gateways` holds an entry that is not `host:port`. */
  constructor(options: AgentFleetOptions) {
    this.#options = options;
    this.#log = options.log.child({ component: "agent-fleet", agent: options.agentId });
    this.#entries = parseGatewayList(options.gateways);
    const host = options.host;
    // A session told to go by its gateway (a replica restarting) must not stop the engines that
    // serve the other replicas: only the fleet drains the shared host.
    this.#sessionHost = {
      handler: host.handler,
      get inFlight() {
        return host.inFlight;
      },
      load: () => host.load(),
      drain: () => {},
      idle: () => host.idle(),
    };
  }

  /** Current state. */
  get state(): AgentFleetState {
    return this.#state;
  }

  /** Gateway addresses with a session now, sorted. */
  get gateways(): string[] {
    return [...this.#members.keys()].sort();
  }

  /** The session of each gateway address. */
  get sessions(): ReadonlyMap<string, Agent> {
    return new Map([...this.#members].map(([address, m]) => [address, m.agent]));
  }

  /** Resolves the gateways, joins each and follows the list until drained or shut down. */
  run(): Promise<void> {
    this.#runDone ??= this.#loop();
    return this.#runDone;
  }

  /** Stops taking work on every session, waits for running calls, then stops. Idempotent. */
  drain(reason: string): Promise<void> {
    this.#draining ??= (async () => {
      if (this.#state === "stopped") return;
      this.#state = "draining";
      this.#stop.abort();
      this.#options.host.drain();
      await Promise.all([...this.#members.values()].map((m) => m.agent.drain(reason)));
      await this.#stopAll();
    })();
    return this.#draining;
  }

  /** Cancels running calls, closes every session and ends {@link run}. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#stop.abort();
    await this.#stopAll();
  }

  async #stopAll(): Promise<void> {
    this.#state = "stopped";
    const members = [...this.#members.values()];
    await Promise.all(members.map((m) => m.agent.shutdown()));
    await Promise.all(members.map((m) => m.run));
  }

  async #loop(): Promise<void> {
    this.#state = "running";
    const intervalMs = this.#options.resolveIntervalMs;
    while (this.#state === "running") {
      await this.#follow();
      // Only names can change; a list of literal addresses is joined once.
      if (this.#entries.every((e) => isIP(e.host) !== 0)) break;
      await sleep(intervalMs, undefined, { signal: this.#stop.signal }).catch(() => {});
    }
    await new Promise<void>((resolve) => {
      if (this.#state === "stopped") return resolve();
      this.#stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await this.#draining;
    await Promise.all([...this.#members.values()].map((m) => m.run));
  }

  /** Resolves every entry and joins new addresses, leaving those no longer listed. */
  async #follow(): Promise<void> {
    const wanted = new Set<string>();
    for (const entry of this.#entries) {
      for (const address of await this.#addressesOf(entry)) wanted.add(address);
    }
    if (this.#state !== "running") return;
    for (const address of wanted) {
      if (!this.#members.has(address)) this.#join(address);
    }
    for (const [address, member] of this.#members) {
      if (wanted.has(address) || member.leaving) continue;
      member.leaving = true;
      this.#log.info({ gateway: address }, "gateway address no longer resolves; leaving it");
      void member.agent.drain("gateway replica left the address list");
    }
  }

  async #addressesOf(entry: GatewayEntry): Promise<string[]> {
    const scheme = entry.tls ? "https://" : "";
    const literal = `${scheme}${entry.host.includes(":") ? `[${entry.host}]` : entry.host}:${entry.port}`;
    if (isIP(entry.host) !== 0) return [literal];
    try {
      const ips = await (this.#options.resolve ?? resolveHost)(entry.host);
      // One address: dial the name, as a single gateway always did (TLS names, DNS at dial time).
      if (ips.length <= 1) return [literal];
      return ips.map((ip) => `${scheme}${ip.includes(":") ? `[${ip}]` : ip}:${entry.port}`);
    } catch (err) {
      // Keep what was joined from this name; before the first answer, let the session dial it.
      const joined = [...this.#members.keys()].filter((a) => a.endsWith(`:${entry.port}`));
      this.#log.warn(
        { err, host: entry.host },
        "could not resolve the gateway name; keeping sessions",
      );
      return joined.length > 0 ? joined : [literal];
    }
  }

  #join(address: string): void {
    const entry = this.#entries.find((e) => address.endsWith(`:${e.port}`));
    const agent = new Agent({
      ...this.#options,
      gatewayAddress: address,
      host: this.#sessionHost,
      // A replica dialled by IP still proves the name its certificate was issued for.
      ...(entry?.tls && isIP(entry.host) === 0 ? { tlsServerName: entry.host } : {}),
    });
    const member: Member = { agent, run: Promise.resolve(), leaving: false };
    member.run = agent.run().then(async () => {
      // The session ended on its own (its gateway asked it to go): dial that replica again,
      // unless the address left the list or the fleet is stopping.
      if (this.#members.get(address) !== member) return;
      if (member.leaving || this.#state !== "running") {
        this.#members.delete(address);
        return;
      }
      await sleep(this.#options.rejoinDelayMs ?? 1000, undefined, {
        signal: this.#stop.signal,
      }).catch(() => {});
      this.#members.delete(address);
      if (this.#state === "running") this.#join(address);
    });
    this.#members.set(address, member);
    this.#log.info({ gateway: address }, "joining gateway replica");
  }
}

/**
 * Parses a comma list of gateway addresses, each as {@link parseGatewayAddress} takes it
 * (`https://host:port`, `http://host:port` or `host:port`).
 * @throws Error naming the first entry that is not one.
 */
export function parseGatewayList(list: string): GatewayEntry[] {
  const entries = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error("no gateway address given");
  return entries.map((entry) => {
    const target = parseGatewayAddress(entry);
    const match =
      /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(target.address) ?? /^(.+):(\d+)$/.exec(target.address);
    return { host: match?.[1] ?? "", port: match?.[2] ?? "", tls: target.tls };
  });
}

/** Every address of `host`, IPv4 only when it has IPv4 ones. */
async function resolveHost(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true });
  const v4 = found.filter((a) => a.family === 4).map((a) => a.address);
  const all = v4.length > 0 ? v4 : found.map((a) => a.address);
  return [...new Set(all)].sort();
}
