import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/health/v1/health_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { BackendRegistry } from "../registry/index.js";

/** Options of {@link createHealthHandler}. */
export interface HealthHandlerOptions {
  /** Registry that decides whether synthesis can be served. */
  registry: BackendRegistry;
  /** Fully-qualified names of the public services. */
  services: readonly string[];
  /** Aborts when the gateway shuts down (statuses turn NOT_SERVING). */
  shutdownSignal: AbortSignal;
  /**
   * The database: while it is unavailable, the gateway (`""`) and the services that need it
   * (`databaseServices`) are NOT_SERVING. Omitted: not watched.
   */
  database?: { readonly available: boolean; watch(listener: () => void): () => void } | undefined;
  /** Services that cannot serve without the database. @default none */
  databaseServices?: readonly string[] | undefined;
}

/**
 * grpc.health.v1 for the public port. The empty service name is the gateway process itself;
 * `voxgate.v1.TtsService` is SERVING only while a ready backend can synthesize, so a load balancer
 * can route around a gateway that has no GPUs behind it. While the database is unavailable, the
 * gateway and the services that need it are NOT_SERVING. Other services are SERVING while up.
 */
export function createHealthHandler(options: HealthHandlerOptions): ServiceImpl<typeof Health> {
  const { registry, shutdownSignal } = options;
  const known = new Set(["", ...options.services]);
  const statusOf = createServingStatus(options);
  return createHealthService(statusOf, known, registry, shutdownSignal, options.database);
}

/**
 * The serving status of a public service, as grpc.health.v1 reports it (also read by the plain
 * HTTP form, `GET /healthz?service=NAME`): SERVICE_UNKNOWN for a name the gateway does not serve,
 * NOT_SERVING once it shuts down, and for `voxgate.v1.TtsService` while no READY backend can
 * synthesize.
 */
export function createServingStatus(options: HealthHandlerOptions): (service: string) => Status {
  const { registry, shutdownSignal } = options;
  const known = new Set(["", ...options.services]);
  const needsDatabase = new Set(["", ...(options.databaseServices ?? [])]);
  return (service: string): Status => {
    if (!known.has(service)) return Status.SERVICE_UNKNOWN;
    if (shutdownSignal.aborted) return Status.NOT_SERVING;
    if (options.database?.available === false && needsDatabase.has(service)) {
      return Status.NOT_SERVING;
    }
    if (service === "voxgate.v1.TtsService") {
      const canSpeak = registry
        .list()
        .some(
          (b) =>
            b.state === BackendState.READY &&
            b.capabilities.engines.some((e) => e.features.includes(Feature.SYNTHESIZE)),
        );
      return canSpeak ? Status.SERVING : Status.NOT_SERVING;
    }
    return Status.SERVING;
  };
}

function createHealthService(
  statusOf: (service: string) => Status,
  known: ReadonlySet<string>,
  registry: BackendRegistry,
  shutdownSignal: AbortSignal,
  database: HealthHandlerOptions["database"],
): ServiceImpl<typeof Health> {
  return {
    check(request) {
      const status = statusOf(request.service);
      if (status === Status.SERVICE_UNKNOWN) {
        throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
      }
      return { status };
    },
    list() {
      return {
        statuses: Object.fromEntries([...known].map((name) => [name, { status: statusOf(name) }])),
      };
    },
    async *watch(request, context) {
      let last: Status | undefined;
      let wake: (() => void) | undefined;
      const unsubscribeRegistry = registry.watch(() => wake?.());
      const unsubscribeDatabase = database?.watch(() => wake?.());
      const onAbort = () => wake?.();
      context.signal.addEventListener("abort", onAbort);
      shutdownSignal.addEventListener("abort", onAbort);
      try {
        while (!context.signal.aborted) {
          const status = statusOf(request.service);
          if (status !== last) {
            last = status;
            yield { status };
          }
          if (shutdownSignal.aborted) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        unsubscribeRegistry();
        unsubscribeDatabase?.();
        context.signal.removeEventListener("abort", onAbort);
        shutdownSignal.removeEventListener("abort", onAbort);
      }
    },
  };
}
