import type { Client } from "@connectrpc/connect";
import type {
  BackendKind,
  BackendState,
  BreakerState,
} from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { Capabilities, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { GPUBackendService, LoadReport } from "../../gen/voxgate/v1/gpu_backend_pb.js";

/** A typed client of the backend contract; every backend kind is reached through one. */
export type GpuBackendClient = Client<typeof GPUBackendService>;

/** What a backend brings when it joins the registry. */
export interface BackendRegistration {
  /** Stable id (an agent's id survives reconnects). */
  id: string;
  /** How the gateway reaches it. */
  kind: BackendKind;
  /** Typed client of GPUBackendService for this backend. */
  client: GpuBackendClient;
  /** Engines, voices, features, slots. */
  capabilities: Capabilities;
  /** Routing priority; lower is preferred. */
  priority: number;
  /** Software version, for admin views. */
  version: string;
  /** Where it connected from / is reached at. */
  address: string;
  /** Free-form labels. */
  labels: Record<string, string>;
  /**
   * Clone prompts the backend holds (an agent's cache, as its hello listed them plus those sent
   * since); a routing hint, kept up to date by the agent link.
   */
  promptDigests?: ReadonlySet<string>;
}

/** A backend as the registry holds it: registration plus live state. */
export interface RegisteredBackend extends BackendRegistration {
  /** Health state (PENDING until a heartbeat or probe proves it alive). */
  state: BackendState;
  /** Circuit breaker state. */
  breaker: BreakerState;
  /** Calls running now (leases not yet released). */
  inFlight: number;
  /** Latest load reported by the backend itself. */
  load: LoadReport | undefined;
  /** Last error seen, for admin views. */
  lastError: string;
  /** When the backend joined. */
  connectedAt: Date;
  /** When it last proved alive (heartbeat or successful call). */
  lastSeenAt: Date;
  /** Calls routed to it. */
  callsTotal: number;
  /** Of those, calls that failed because of the backend. */
  failuresTotal: number;
}

/** What a call needs from a backend. */
export interface BackendCriteria {
  /** Feature the call uses. */
  feature: Feature;
  /** Engine id, or empty for any. */
  engine?: string;
  /** Model family, or empty for any. */
  modelFamily?: string;
  /** Model size within the family (e.g. "1.7b"), or empty for any; a clone prompt names one. */
  modelSize?: string;
  /**
   * Match `modelFamily` and `modelSize` exactly, empty ones included (clone prompts: a prompt only
   * works on the model that made it). @default false (empty means any)
   */
  exactModel?: boolean;
  /** Backend ids already tried by this call. */
  exclude?: ReadonlySet<string>;
  /**
   * Clone prompt the call speaks with: among backends of equal priority, those that already hold
   * it are preferred (no prompt bytes to send), before load.
   */
  promptDigest?: string;
}
