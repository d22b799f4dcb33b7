/** The OpenAPI 3.1 document of the public HTTP surface, and the /openapi.json and /docs routes. */
export { type ApiDocsFrontendOptions, createApiDocsFrontend } from "./api-docs-frontend.js";
export { gatewayOperations } from "./gateway-operations.js";
export {
  createOpenApiDocument,
  type ExtraOperation,
  kBearerScheme,
  type OpenApiDocumentOptions,
  type OpenApiOperation,
  openApiPath,
  securityOf,
} from "./openapi-document.js";
export { commentsFromDescriptorSet } from "./proto-comments.js";
export {
  createSchemaCollector,
  type JsonSchema,
  type ProtoComments,
  type SchemaCollector,
  scalarSchema,
  schemaRef,
} from "./proto-json-schema.js";
export { createVoxgateOpenApi, type VoxgateOpenApiOptions } from "./voxgate-openapi.js";
