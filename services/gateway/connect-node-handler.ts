import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ConnectRouterOptions,
  type ContextValues,
  createConnectRouter,
} from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import {
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import type { JsonLimits } from "../input-limits/json-limits.js";
import { guardRpcBody, rpcBodyFormat } from "../input-limits/rpc-body-guard.js";
import { capDeadlineHeaders } from "./deadline-cap.js";

/** Options of {@link createConnectNodeHandler}. */
export interface ConnectNodeHandlerOptions extends ConnectRouterOptions {
  /** Registers the RPCs. */
  routes(router: ConnectRouter): void;
  /** Context values of each call. */
  contextValues(req: NodeRequest): ContextValues;
  /** Limits JSON messages are held to while they are read (the byte limit is per message). */
  jsonLimits: JsonLimits;
  /** Logger for handler failures connect-node would print to the console. */
  log: Logger;
  /**
   * Longest deadline a call gets, in ms: longer `connect-timeout-ms` / `grpc-timeout` headers are
   * cut to it before connect-node reads them (it would refuse them). Undefined: no cap.
   */
  deadlineCapMs?: number | undefined;
}

/**
 * Serves Connect, gRPC and gRPC-Web like connect-node's `connectNodeAdapter`, with one step
 * added before connect-node reads a request: the body passes {@link guardRpcBody}, which refuses
 * too deep or too large JSON while it is read and reports malformed protobuf as
 * INVALID_ARGUMENT. connect-node offers no hook between the raw bytes and `JSON.parse`, so
 * this handler builds the universal request itself (with connect-node's public helpers) and wraps
 * its body. Unknown paths answer 404.
 */
export function createConnectNodeHandler(
  options: ConnectNodeHandlerOptions,
): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter(options);
  options.routes(router);
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) paths.set(handler.requestPath, handler);
  return (req, res) => {
    const handler = paths.get((req.url ?? "").split("?", 2)[0] ?? "");
    if (!handler) {
      res.writeHead(404);
      res.end();
      return;
    }
    let uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues(req));
    if (options.deadlineCapMs !== undefined) capDeadlineHeaders(uReq.header, options.deadlineCapMs);
    const format = rpcBodyFormat(String(req.headers["content-type"] ?? ""));
    const body = uReq.body;
    if (format && isAsyncIterable(body)) {
      uReq = {
        ...uReq,
        body: guardRpcBody(body, {
          input: handler.method.input,
          format,
          limits: options.jsonLimits,
        }),
      };
    }
    // A response stream closed by the client (RST_STREAM, a dropped connection) before it was
    // finished emits "close" but no "error", and Node drops the callbacks of writes still
    // pending in it: connect-node's writer, waiting for "drain", then waited forever and kept
    // the call (its backend lease, its relay from the agent) alive. Turn that close into the
    // error the writer listens for.
    res.once("close", () => {
      if (!res.writableFinished && res.listenerCount("error") > 0) {
        res.emit("error", new ConnectError("the client closed the stream", Code.Canceled));
      }
    });
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.log.error(
          { err: reason, rpc: `${handler.service.typeName}/${handler.method.name}` },
          "RPC handler failed",
        );
      });
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}
