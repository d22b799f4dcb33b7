/**
 * voxgate clients for browsers: what `voxgate/client` resolves to under the `browser` export
 * condition (bundlers such as esbuild, Vite and webpack set it), and `voxgate/client/browser`.
 * `createVoxgateClient` is the browser factory here, so code shared by Node and pages can import
 * one name.
 */

/** Word timings of `tts.streamSynthesize({ wordTimings: true })`: unpack its chunks' `extensions`. */
export {
  type WordTiming,
  type WordTimings,
  WordTimingsSchema,
} from "../gen/voxgate/v1/audio_pb.js";
export type {
  VoxgateBrowserClient,
  VoxgateBrowserClientOptions,
  VoxgateBrowserProtocol,
} from "./browser-client.js";
export {
  createVoxgateBrowserClient,
  createVoxgateBrowserClient as createVoxgateClient,
  createVoxgateBrowserTransport,
  createVoxgateBrowserTransport as createVoxgateTransport,
  VOXGATE_BROWSER_PROTOCOLS,
} from "./browser-client.js";
export type { VoxgateServiceClients } from "./service-clients.js";
export { createVoxgateServiceClients } from "./service-clients.js";
