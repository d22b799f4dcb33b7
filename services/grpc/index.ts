export { type CancellableCall, cancelStream } from "./cancel-stream.js";
export { createGrpcServiceDefinition, deserializeFor, serializeFor } from "./service-definition.js";
export { writeWithBackpressure } from "./write-with-backpressure.js";
