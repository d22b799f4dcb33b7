import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { BackendAdminService } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { BackendEvent, BackendRegistry } from "../registry/index.js";
import { toBackendMessage } from "./backend-snapshot.js";
import { renderMetrics } from "./metrics-text.js";

/** Options of {@link createBackendAdminHandler}. */
export interface BackendAdminHandlerOptions {
  /** The registry to show and steer. */
  registry: BackendRegistry;
  /**
   * The gateway's Prometheus metrics, which GetMetrics (`/v1/metrics`) serves; absent, the
   * registry's own figures.
   */
  metrics?: { render(): Promise<string>; readonly contentType: string };
  /**
   * Most registry events buffered for one slow watcher before it is cut off.
   * @default 1000
   */
  maxQueuedEvents?: number;
}

/** Creates the BackendAdminService implementation (admin scope). */
export function createBackendAdminHandler(
  options: BackendAdminHandlerOptions,
): ServiceImpl<typeof BackendAdminService> {
  const { registry } = options;
  const maxQueued = options.maxQueuedEvents ?? 1000;
  const find = (id: string) => {
    const backend = registry.get(id);
    if (!backend) throw new ConnectError(`backend "${id}" is not registered`, Code.NotFound);
    return backend;
  };
  return {
    listBackends() {
      return { backends: registry.list().map(toBackendMessage) };
    },
    getBackend(request) {
      return { backend: toBackendMessage(find(request.backendId)) };
    },
    async *watchBackends(_request, context) {
      const queue: BackendEvent[] = registry.list().map((backend) => ({
        backend,
        change: "added" as const,
        reason: "current state",
        time: new Date(),
      }));
      let wake: (() => void) | undefined;
      let overflow = false;
      const unsubscribe = registry.watch((event) => {
        if (queue.length >= maxQueued) overflow = true;
        else queue.push(event);
        wake?.();
      });
      const onAbort = () => wake?.();
      context.signal.addEventListener("abort", onAbort);
      try {
        while (!context.signal.aborted) {
          const event = queue.shift();
          if (event) {
            yield {
              backend: toBackendMessage(event.backend),
              reason: event.reason,
              time: timestampFromDate(event.time),
            };
            continue;
          }
          if (overflow) {
            throw new ConnectError(
              `watcher fell more than ${maxQueued} events behind; reconnect to resync`,
              Code.ResourceExhausted,
            );
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      } finally {
        unsubscribe();
        context.signal.removeEventListener("abort", onAbort);
      }
    },
    drainBackend(request) {
      find(request.backendId);
      registry.drain(request.backendId, "drained by admin");
      return { backend: toBackendMessage(find(request.backendId)) };
    },
    undrainBackend(request) {
      find(request.backendId);
      registry.undrain(request.backendId, "undrained by admin");
      return { backend: toBackendMessage(find(request.backendId)) };
    },
    async getMetrics() {
      if (options.metrics) {
        return {
          contentType: options.metrics.contentType,
          data: Buffer.from(await options.metrics.render()),
        };
      }
      return {
        contentType: "text/plain; version=0.0.4",
        data: Buffer.from(renderMetrics(registry.list())),
      };
    },
  };
}
