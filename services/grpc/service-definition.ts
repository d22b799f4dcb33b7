/**
 * Builds `@grpc/grpc-js` service definitions from protobuf-es descriptors, so the agent link speaks
 * the same generated contracts as the Connect side with no second code generator.
 */
import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  isMessage,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** Serializes a message (or init object) of `schema` for grpc-js without copying the bytes. */
export function serializeFor<Desc extends DescMessage>(schema: Desc) {
  return (value: unknown): Buffer => {
    const message = isMessage(value, schema) ? value : create(schema, value as never);
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** Parses a message of `schema` from grpc-js's buffer. */
export function deserializeFor<Desc extends DescMessage>(schema: Desc) {
  return (buffer: Buffer): MessageShape<Desc> => fromBinary(schema, buffer);
}

/**
 * Returns the grpc-js definition of `service`, keyed by each method's `localName`
 * (e.g. `connect`, `call`), with paths `/package.Service/Method`.
 */
export function createGrpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const kind = method.methodKind;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: kind === "client_streaming" || kind === "bidi_streaming",
      responseStream: kind === "server_streaming" || kind === "bidi_streaming",
      requestSerialize: serializeFor(method.input),
      requestDeserialize: deserializeFor(method.input),
      responseSerialize: serializeFor(method.output),
      responseDeserialize: deserializeFor(method.output),
    };
  }
  return definition;
}
