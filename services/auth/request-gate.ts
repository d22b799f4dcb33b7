import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { UsageMeter } from "../limits/usage-meter.js";
import { parseBearer } from "./bearer.js";
import { type NodeRequest, type NodeResponse, writeRpcError } from "./rpc-error-response.js";
import { serviceAccess } from "./scopes.js";
import type { Principal, TokenStore } from "./token-store.js";

/** What the gate learned about a request, handed to the RPC layer. */
export interface GateResult {
  /** Request id: the caller's `x-request-id` when it is sane, else a new one. */
  requestId: string;
  /** Who is calling; undefined for open services (health). */
  principal: Principal | undefined;
  /** The peer's IP address (the last proxy's, behind one), for access logs; "" when unknown. */
  clientAddress?: string;
}

/** Options of {@link createRequestGate}. */
export interface RequestGateOptions {
  /** Accepted tokens. */
  tokens: TokenStore;
  /** Logger for refusals. */
  log: Logger;
  /**
   * Per-token limits of calls: each admitted call is counted until its response closes. Absent =
   * no per-token limits.
   */
  meter?: Pick<UsageMeter, "startCall">;
  /**
   * Maps a request path to the fully-qualified service it calls, or undefined when the path is no
   * RPC (then the request passes on, to be answered 404 by the router).
   * @default the Connect/gRPC path form `/package.Service/Method`
   */
  serviceOfPath?: (path: string) => string | undefined;
}

/** Checks each public request's token and scope before any of its body is read. */
export interface RequestGate {
  /**
   * Returns the gate result when the request may proceed; otherwise answers it (UNAUTHENTICATED or
   * PERMISSION_DENIED in the request's protocol) and returns undefined.
   */
  admit(req: NodeRequest, res: NodeResponse, route?: GatedRoute): GateResult | undefined;
}

/** What a non-RPC route tells the gate: the service it calls and how it writes errors. */
export interface GatedRoute {
  /** Fully-qualified service whose scope is needed; undefined when no token is needed. */
  service: string | undefined;
  /** Writes a refusal in the route's own error format. */
  writeError(req: NodeRequest, res: NodeResponse, error: ConnectError): void;
}

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Creates the public port's request gate. */
export function createRequestGate(options: RequestGateOptions): RequestGate {
  const log = options.log.child({ component: "request-gate" });
  const serviceOfPath = options.serviceOfPath ?? rpcServiceOfPath;
  return {
    admit(req, res, route) {
      const offered = String(req.headers["x-request-id"] ?? "");
      const requestId = SANE_REQUEST_ID.test(offered) ? offered : randomUUID();
      res.setHeader("x-request-id", requestId);
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      const service = route ? route.service : serviceOfPath(path);
      const access = service
        ? serviceAccess(service)
        : route
          ? ({ kind: "open" } as const)
          : ({ kind: "unknown" } as const);
      const clientAddress = req.socket?.remoteAddress ?? "";
      if (access.kind !== "scope") return { requestId, principal: undefined, clientAddress };

      const refuse = (message: string, code: Code, error = new ConnectError(message, code)) => {
        log.warn({ requestId, path, code: Code[code], reason: message }, "request refused");
        (route?.writeError ?? writeRpcError)(req, res, error);
        return undefined;
      };
      const token = parseBearer(req.headers.authorization);
      if (!token) {
        return refuse("missing token: send Authorization: Bearer <token>", Code.Unauthenticated);
      }
      const principal = options.tokens.verify(token);
      if (!principal) return refuse("invalid token", Code.Unauthenticated);
      if (principal.scopes.has("agent")) {
        return refuse(
          "agent tokens are accepted on the agent port only, not on the public API",
          Code.Unauthenticated,
        );
      }
      if (!principal.scopes.has(access.scope)) {
        return refuse(
          `token "${principal.name}" lacks the "${access.scope}" scope needed for ${service}`,
          Code.PermissionDenied,
        );
      }
      if (options.meter) {
        let end: () => void;
        try {
          end = options.meter.startCall(principal.name);
        } catch (err) {
          const error = ConnectError.from(err);
          return refuse(error.rawMessage, error.code, error);
        }
        // A call runs until its response is done or its connection goes.
        res.once("close", end);
      }
      return { requestId, principal, clientAddress };
    },
  };
}

/** `/voxgate.v1.TtsService/Synthesize` → `voxgate.v1.TtsService`. */
function rpcServiceOfPath(path: string): string | undefined {
  const match = /^\/([A-Za-z_][\w.]*)\/[A-Za-z_]\w*$/.exec(path);
  return match?.[1];
}
