/** The OpenAPI 3.1 document of the public HTTP surface, and the /openapi.json and /docs routes. */
export {
  API_DOCS_ROUTES,
  type ApiDocsFrontendOptions,
  createApiDocsFrontend,
} from "./api-docs-frontend.js";
export {
  createOpenApiDocument,
  type ExtraOperation,
  kBearerScheme,
  type OpenApiDocumentOptions,
  type OpenApiOperation,
  openApiPath,
  routeOperations,
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
export { componentRef, objectSchema, stringSchema } from "./schema-builders.js";
export { createVoxgateOpenApi, type VoxgateOpenApiOptions } from "./voxgate-openapi.js";
