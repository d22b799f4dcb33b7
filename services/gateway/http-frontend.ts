import type { ConnectError } from "@connectrpc/connect";
import type { GateResult } from "../auth/request-gate.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import type { DeclaredRoute } from "./http-route-spec.js";

/** One request a frontend will serve, decided from its method, path and headers alone. */
export interface HttpRoute {
  /**
   * Fully-qualified service the route calls (e.g. `voxgate.v1.TtsService`), whose scope the gate
   * checks; undefined when the route needs no token (a 404/405 answer, an open endpoint).
   */
  service: string | undefined;
  /** Writes a gate refusal in this route's error format (JSON, OpenAI error object, …). */
  writeError(req: NodeRequest, res: NodeResponse, error: ConnectError): void;
  /** Serves the request once the gate admitted it. */
  serve(req: NodeRequest, res: NodeResponse, gate: GateResult): void;
}

/**
 * A way into the gateway other than Connect/gRPC/gRPC-Web on `/package.Service/Method`: REST/JSON
 * from `google.api.http`, the OpenAI-compatible speech API. Frontends call services through the
 * in-process transport, so every path reaches the same implementations, auth and interceptors.
 */
export interface HttpFrontend {
  /** The route for `req`, or undefined when this frontend does not serve it. Must not read the body. */
  route(req: NodeRequest): HttpRoute | undefined;
  /**
   * Every route this frontend answers (its 404 and 405 answers aside), as the OpenAPI document
   * must describe it: test/openapi-routes.test.ts checks the document against these.
   */
  readonly routes: readonly DeclaredRoute[];
}
