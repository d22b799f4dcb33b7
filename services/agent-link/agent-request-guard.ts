import {
  clone,
  create,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { isReflectMessage, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { ClonePromptRefSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";

/** A request made safe to send to an agent. */
export interface AgentRequest {
  /** The serialized request, with no storage URL and no unknown fields. */
  bytes: Uint8Array;
  /** Digests of every clone prompt the request refers to: the only ones the agent may fetch. */
  promptDigests: string[];
}

/**
 * Prepares a request for an agent. The one point every request to an agent passes through, so
 * the rule "agents never receive storage URLs or credentials" holds here for every method: each
 * `ClonePromptRef` anywhere in the message (voice selectors, lists, maps, nested messages) loses
 * its `url` (that field exists only for serverless backends, which cannot hold a stream), unknown
 * fields are dropped (nothing a caller smuggled in passes through), and the prompt digests are
 * collected for the call's fetch grant.
 */
export function prepareAgentRequest<I extends DescMessage>(
  schema: I,
  message: MessageInitShape<I>,
): AgentRequest {
  // A deep copy: `create` returns a message as it is, and the caller's request may still go to a
  // serverless backend (failover) that needs its URL.
  const target = reflect(schema, clone(schema, create(schema, message)));
  const promptDigests: string[] = [];
  scrub(target, promptDigests);
  return {
    bytes: toBinary(schema, target.message as MessageShape<I>, { writeUnknownFields: false }),
    promptDigests,
  };
}

/** Clears `url` of every ClonePromptRef under `message` and collects their digests. */
function scrub(message: ReflectMessage, digests: string[]): void {
  if (message.desc.typeName === ClonePromptRefSchema.typeName) {
    const url = message.desc.fields.find((f) => f.name === "url");
    if (url) message.clear(url);
    const digest = message.desc.fields.find((f) => f.name === "digest");
    if (digest) digests.push(String(message.get(digest)));
    return;
  }
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    switch (field.fieldKind) {
      case "message":
        scrub(message.get(field), digests);
        break;
      case "list":
        if (field.listKind === "message") {
          for (const item of message.get(field)) {
            if (isReflectMessage(item)) scrub(item, digests);
          }
        }
        break;
      case "map":
        if (field.mapKind === "message") {
          for (const value of message.get(field).values()) {
            if (isReflectMessage(value)) scrub(value, digests);
          }
        }
        break;
      default:
        break;
    }
  }
}
