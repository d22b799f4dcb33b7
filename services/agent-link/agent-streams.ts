import type { ServerDuplexStream } from "@grpc/grpc-js";
import type {
  CallRequest,
  CallResponse,
  ConnectRequest,
  ConnectResponse,
} from "../../gen/voxgate/v1/agent_pb.js";

/** The gateway's end of an agent's control stream. */
export type ControlStream = ServerDuplexStream<ConnectRequest, ConnectResponse>;

/** The gateway's end of one call stream opened by an agent. */
export type CallStream = ServerDuplexStream<CallRequest, CallResponse>;

/** A call stream whose first message (the accept) was already read, with its reader. */
export interface AcceptedCall {
  /** The stream, for writing and cancelling. */
  stream: CallStream;
  /** The stream's single reader, positioned after the accept message. */
  messages: AsyncIterator<CallRequest>;
}
