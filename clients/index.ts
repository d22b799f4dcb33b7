/**
 * voxgate clients: the typed client factory for every public voxgate service. The `voxgate` CLI
 * lives in `./cli/` (entry `./cli/main.ts`, executable `bin/voxgate.mjs`).
 */

/** Word timings of `tts.streamSynthesize({ wordTimings: true })`: unpack its chunks' `extensions`. */
export {
  type WordTiming,
  type WordTimings,
  WordTimingsSchema,
} from "../gen/voxgate/v1/audio_pb.js";
export type {
  VoxgateClient,
  VoxgateClientOptions,
  VoxgateHttpVersion,
  VoxgateProtocol,
  VoxgateServiceClients,
  VoxgateTransport,
} from "./voxgate-client.js";
export {
  createVoxgateClient,
  createVoxgateServiceClients,
  createVoxgateTransport,
  VOXGATE_PROTOCOLS,
} from "./voxgate-client.js";
