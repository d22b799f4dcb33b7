/**
 * `npm run gen` (after buf generate): writes openapi/openapi.json, the OpenAPI 3.1 document the
 * gateway serves at /openapi.json, from the route table of REST_SERVICES and, for descriptions,
 * the proto comments of a `buf build` image (generated code keeps no comments).
 * test/openapi.test.ts checks that the committed file is what this writes.
 *
 * Usage: node --import tsx scripts/gen-openapi.ts
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { REST_SERVICES } from "../services/gateway/public-services.js";
import { commentsFromDescriptorSet } from "../services/openapi/proto-comments.js";
import { createVoxgateOpenApi } from "../services/openapi/voxgate-openapi.js";
import { createRouteTable } from "../services/transcoding/route-table.js";

const root = fileURLToPath(new URL("..", import.meta.url));
/** Where the document is committed (and read from by the gateway). */
export const OPENAPI_FILE = join(root, "openapi", "openapi.json");

/** Renders the document as the committed file holds it (2-space JSON, final newline). */
export function renderOpenApi(): string {
  const image = execFileSync(join(root, "node_modules", ".bin", "buf"), ["build", "-o", "-"], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const comments = commentsFromDescriptorSet(fromBinary(FileDescriptorSetSchema, image));
  const document = createVoxgateOpenApi({ table: createRouteTable(REST_SERVICES), comments });
  return `${JSON.stringify(document, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OPENAPI_FILE, renderOpenApi());
  console.log(`wrote ${OPENAPI_FILE}`);
}
