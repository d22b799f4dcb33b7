import { create, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type ServiceImpl,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import {
  type ServerReflectionRequest as ServerReflectionRequestV1,
  ServerReflectionResponseSchema as ServerReflectionResponseV1Schema,
  ServerReflection as ServerReflectionV1,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  type ServerReflectionRequest as ServerReflectionRequestV1Alpha,
  ServerReflectionResponseSchema as ServerReflectionResponseV1AlphaSchema,
  ServerReflection as ServerReflectionV1Alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import {
  createDescriptorIndex,
  type DescriptorIndex,
  isDescriptorNotFoundError,
} from "./descriptor-index.js";

/** The reflection services, v1 and its older twin v1alpha, which some clients still ask for. */
export const REFLECTION_SERVICES: readonly DescService[] = [
  ServerReflectionV1,
  ServerReflectionV1Alpha,
];

/** Options of {@link createReflectionServices}. */
export interface ReflectionOptions {
  /**
   * The services the server offers, besides reflection itself (always listed): their files and
   * everything those import are what clients may download.
   */
  services: readonly DescService[];
  /**
   * Most requests one reflection stream may send; past it the stream ends RESOURCE_EXHAUSTED.
   * A client lists services and fetches one file per type it meets, so tens are plenty.
   * @default 1000
   */
  maxRequestsPerStream?: number;
}

/** The request fields v1 and v1alpha share (same names, same numbers). */
type AnyRequest = ServerReflectionRequestV1 | ServerReflectionRequestV1Alpha;
/** A response of either version, before it becomes a message of its version. */
type ResponseInit = MessageInitShape<typeof ServerReflectionResponseV1Schema>;
/** The answer part of a response. */
type Answer = NonNullable<ResponseInit["messageResponse"]>;

/**
 * gRPC server reflection (`grpc.reflection.v1.ServerReflection` and `…v1alpha…`), so tools such as
 * `buf curl` and grpcurl list and call services without being given the schema. Answers from the
 * descriptors compiled into the server: the offered services, the reflection services, and every
 * file they import. Each file goes once per stream, as grpc-go does: a file asked for is always
 * sent, its imports only when this stream has not sent them yet. Lookups that find nothing get
 * an `error_response` with NOT_FOUND and the stream goes on, as the protocol asks.
 */
export function createReflectionServices(options: ReflectionOptions): ServiceImplSpec[] {
  const offered = [...options.services, ...REFLECTION_SERVICES];
  const index = createDescriptorIndex(offered);
  const maxRequests = options.maxRequestsPerStream ?? 1000;
  const v1: ServiceImpl<typeof ServerReflectionV1> = {
    async *serverReflectionInfo(requests) {
      for await (const init of answerAll(index, requests, maxRequests)) {
        yield create(ServerReflectionResponseV1Schema, init);
      }
    },
  };
  const v1alpha: ServiceImpl<typeof ServerReflectionV1Alpha> = {
    async *serverReflectionInfo(requests) {
      for await (const init of answerAll(index, requests, maxRequests)) {
        // Same fields and numbers as v1; only the type names differ.
        yield create(
          ServerReflectionResponseV1AlphaSchema,
          init as MessageInitShape<typeof ServerReflectionResponseV1AlphaSchema>,
        );
      }
    },
  };
  return [
    createServiceImplSpec<typeof ServerReflectionV1>(ServerReflectionV1, v1),
    createServiceImplSpec<typeof ServerReflectionV1Alpha>(ServerReflectionV1Alpha, v1alpha),
  ];
}

async function* answerAll(
  index: DescriptorIndex,
  requests: AsyncIterable<AnyRequest>,
  maxRequests: number,
): AsyncGenerator<ResponseInit> {
  // Files this stream has sent; their imports are not sent again.
  const sent = new Set<string>();
  let count = 0;
  for await (const request of requests) {
    count++;
    if (count > maxRequests) {
      throw new ConnectError(
        `a reflection stream takes at most ${maxRequests} requests; open a new one`,
        Code.ResourceExhausted,
      );
    }
    yield {
      validHost: request.host,
      originalRequest: request as ServerReflectionRequestV1,
      messageResponse: answer(index, request, sent),
    };
  }
}

function answer(index: DescriptorIndex, request: AnyRequest, sent: Set<string>): Answer {
  const files = (fileDescriptorProto: Uint8Array[]) =>
    ({ case: "fileDescriptorResponse", value: { fileDescriptorProto } }) as const;
  const asked = request.messageRequest;
  try {
    switch (asked.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: index.serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename":
        return files(index.fileByName(asked.value, sent));
      case "fileContainingSymbol":
        return files(index.fileContainingSymbol(asked.value, sent));
      case "fileContainingExtension":
        return files(
          index.fileContainingExtension(
            asked.value.containingType,
            asked.value.extensionNumber,
            sent,
          ),
        );
      case "allExtensionNumbersOfType":
        return {
          case: "allExtensionNumbersResponse",
          value: {
            baseTypeName: asked.value,
            extensionNumber: index.extensionNumbersOf(asked.value),
          },
        };
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "the request names no lookup" },
        };
    }
  } catch (err) {
    if (!isDescriptorNotFoundError(err)) throw err;
    return {
      case: "errorResponse",
      value: { errorCode: Code.NotFound, errorMessage: err.message },
    };
  }
}
