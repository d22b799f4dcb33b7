import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Backend, BackendSchema } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { RegisteredBackend } from "../registry/index.js";

/** Converts a registry entry to its admin API form. */
export function toBackendMessage(backend: Readonly<RegisteredBackend>): Backend {
  return create(BackendSchema, {
    id: backend.id,
    kind: backend.kind,
    state: backend.state,
    breaker: backend.breaker,
    priority: backend.priority,
    capabilities: backend.capabilities,
    inFlight: backend.inFlight,
    version: backend.version,
    address: backend.address,
    lastError: backend.lastError,
    labels: backend.labels,
    connectTime: timestampFromDate(backend.connectedAt),
    lastHeartbeatTime: timestampFromDate(backend.lastSeenAt),
    callsTotal: BigInt(backend.callsTotal),
    failuresTotal: BigInt(backend.failuresTotal),
    ...(backend.load ? { load: backend.load } : {}),
  });
}
