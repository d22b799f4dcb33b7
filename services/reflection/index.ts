/** gRPC server reflection (v1 and v1alpha) from the descriptors compiled into the server. */
export {
  createDescriptorIndex,
  type DescriptorIndex,
  DescriptorNotFoundError,
  isDescriptorNotFoundError,
} from "./descriptor-index.js";
export {
  createReflectionServices,
  REFLECTION_SERVICES,
  type ReflectionOptions,
} from "./reflection-handler.js";
