import { Code, ConnectError } from "@connectrpc/connect";

/** Longest message from an agent passed on to callers, in characters; the rest is cut. */
export const MAX_AGENT_MESSAGE_CHARS = 1024;

/**
 * Makes a status message from an agent fit to reach callers: agents are untrusted, and their
 * messages end up in REST and OpenAI error bodies, logs and gRPC trailers. Control characters
 * become spaces, `<`, `>` and `&` are HTML-escaped (a `<script>` arrives as text), and the
 * message is cut to {@link MAX_AGENT_MESSAGE_CHARS} characters.
 */
export function sanitizeAgentMessage(message: string): string {
  const cut =
    message.length > MAX_AGENT_MESSAGE_CHARS
      ? `${message.slice(0, MAX_AGENT_MESSAGE_CHARS)}… (${message.length - MAX_AGENT_MESSAGE_CHARS} more characters cut)`
      : message;
  return cut
    .replace(/\p{Cc}/gu, " ")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}

/**
 * The error for a non-OK status an agent ended a call with: a code that is no gRPC status code
 * (999, −1) becomes UNKNOWN, which counts as a backend fault (the call fails over), and the
 * message is sanitized by {@link sanitizeAgentMessage}.
 */
export function agentStatusError(agentId: string, code: number, message: string): ConnectError {
  const known = Number.isInteger(code) && code >= Code.Canceled && code <= Code.Unauthenticated;
  const text = sanitizeAgentMessage(message);
  if (known) return new ConnectError(text, code as Code);
  return new ConnectError(
    `agent ${agentId} ended the call with unknown status code ${String(code).slice(0, 16)}: ${text}`,
    Code.Unknown,
  );
}
