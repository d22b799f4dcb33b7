export {
  compareSpecificity,
  matchPathTemplate,
  type PathBindings,
  type PathTemplate,
  PathTemplateError,
  parsePathTemplate,
  type TemplateSegment,
  type TemplateVariable,
} from "./path-template.js";
export {
  buildRequestMessage,
  type RestRequestParts,
  type UnknownQueryPolicy,
} from "./request-mapping.js";
export {
  httpStatusOfCode,
  restErrorJson,
  type WriteRestErrorOptions,
  writeRestError,
} from "./rest-error.js";
export {
  createRestTranscoder,
  kTimeoutHeader,
  type RestTranscoder,
  type RestTranscoderOptions,
} from "./rest-transcoder.js";
export {
  createRouteTable,
  isHttpBody,
  kHttpBodyTypeName,
  RestAnnotationError,
  type RestBinding,
  type RouteMatch,
  type RouteTable,
  resolveFieldPath,
} from "./route-table.js";
