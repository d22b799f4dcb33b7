/** The echo engine: synthetic, deterministic audio bytes for benchmarks and relay tests. */
export {
  createEchoEngine,
  ECHO_ENGINE_ID,
  ECHO_PARAMS,
  type EchoEngineOptions,
} from "./echo-engine.js";
export {
  countEchoMismatches,
  ECHO_PATTERN_BYTES,
  echoByteAt,
  fillEchoBytes,
} from "./echo-pattern.js";
