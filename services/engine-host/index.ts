export { describeEngines } from "./engine-capabilities.js";
export {
  createEngineHost,
  type EngineHost,
  type EngineHostOptions,
} from "./engine-host-handler.js";
