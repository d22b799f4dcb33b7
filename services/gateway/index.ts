export { type CallContext, kCallContext } from "./call-context.js";
export {
  createGateway,
  type Gateway,
  type GatewayAddresses,
  type GatewayListenOptions,
  type GatewayOptions,
  isListenError,
  ListenError,
} from "./gateway.js";
export { gatewayMigrations } from "./gateway-migrations.js";
export { gatewayOptionsFromSettings } from "./gateway-options.js";
export { type GatewaySettings, gatewaySettings } from "./gateway-settings.js";
export {
  createGatewayStorage,
  type GatewayStorage,
  type GatewayStorageOptions,
} from "./gateway-storage.js";
export { gatewayTokensFromSettings, type TokenSettings } from "./gateway-tokens.js";
export { createHealthHandler, type HealthHandlerOptions } from "./health-handler.js";
export { HEALTH_ROUTES } from "./health-routes.js";
export type { HttpFrontend, HttpRoute } from "./http-frontend.js";
export {
  createRouteMatcher,
  type DeclaredRoute,
  type HttpRouteDoc,
  type HttpRouteSpec,
  openApiTemplate,
  type RouteMatch,
  type RouteMatcher,
  type RouteMatcherOptions,
  templateVariables,
} from "./http-route-spec.js";
export {
  createInProcessTransport,
  type InProcessTransportOptions,
} from "./in-process-transport.js";
export { createLoggingInterceptor } from "./logging-interceptor.js";
export {
  createPublicServer,
  defaultPublicServerLimits,
  type PublicServer,
  type PublicServerLimits,
  type PublicServerOptions,
} from "./public-server.js";
export {
  createTokenReloader,
  type TokenReloader,
  type TokenReloaderOptions,
} from "./token-reloader.js";
