import { Code, ConnectError } from "@connectrpc/connect";
import type { CreateVoiceRequest } from "../../gen/voxgate/v1/voice_pb.js";

/** Fixed limits on the text fields of a cloned voice (named in their error messages). */
export const kVoiceFieldLimits = {
  /** Longest name, in characters. */
  nameChars: 200,
  /** Longest description, in characters. */
  descriptionChars: 2000,
  /** Longest reference transcript, in characters. */
  referenceTextChars: 5000,
  /** Longest language tag, in characters. */
  languageChars: 35,
  /** Most labels. */
  labels: 32,
  /** Longest label key / value, in characters. */
  labelKeyChars: 63,
  labelValueChars: 256,
  /** Longest request id, in characters. */
  requestIdChars: 128,
} as const;

const invalid = (message: string) => new ConnectError(message, Code.InvalidArgument);

/**
 * Checks the upload size first, before anything else is looked at.
 * @throws ConnectError RESOURCE_EXHAUSTED naming `VOXGATE_MAX_REFERENCE_BYTES`; INVALID_ARGUMENT
 *   for empty audio.
 */
export function checkUploadSize(what: string, sizeBytes: number, maxBytes: number): void {
  if (sizeBytes > maxBytes) {
    throw new ConnectError(
      `${what} is ${sizeBytes} bytes; the limit is ${maxBytes} ` +
        "(max reference bytes: VOXGATE_MAX_REFERENCE_BYTES)",
      Code.ResourceExhausted,
    );
  }
  if (sizeBytes === 0) throw invalid(`${what} is empty`);
}

/**
 * Checks the text fields of a CreateVoice request against {@link kVoiceFieldLimits}.
 * @throws ConnectError INVALID_ARGUMENT naming the field and its limit.
 */
export function checkCreateVoiceFields(request: CreateVoiceRequest): void {
  const L = kVoiceFieldLimits;
  if (request.name.trim().length === 0) throw invalid("name is required");
  const long = (field: string, value: string, max: number) => {
    if (value.length > max)
      throw invalid(`${field} is ${value.length} characters; the limit is ${max}`);
  };
  long("name", request.name, L.nameChars);
  long("description", request.description, L.descriptionChars);
  long("reference_text", request.referenceText, L.referenceTextChars);
  long("language", request.language, L.languageChars);
  if (request.language && !/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(request.language)) {
    throw invalid(`language "${request.language.slice(0, 40)}" is not a BCP-47 tag`);
  }
  const labels = Object.entries(request.labels);
  if (labels.length > L.labels) throw invalid(`${labels.length} labels; the limit is ${L.labels}`);
  for (const [key, value] of labels) {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(key) || key.length > L.labelKeyChars) {
      throw invalid(
        `label key "${key.slice(0, 70)}" must be lowercase [a-z0-9._-], at most ${L.labelKeyChars} characters`,
      );
    }
    long(`label "${key}"`, value, L.labelValueChars);
  }
  if (request.requestId) {
    long("request_id", request.requestId, L.requestIdChars);
    if (!/^[A-Za-z0-9._:-]+$/.test(request.requestId)) {
      throw invalid("request_id may hold letters, digits and ._:- only");
    }
  }
}
