import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding, type AudioFormat } from "../../gen/voxgate/v1/audio_pb.js";
import { encodeWavHeader } from "../audio/wav.js";

/** How PCM from a backend is wrapped for the caller. */
export interface AudioContainer {
  /** MIME type of the result. */
  contentType: string;
  /** Bytes before the first PCM byte of a stream (the streaming WAV header), possibly empty. */
  streamPrefix: Uint8Array;
  /** Bytes before the PCM of a whole clip of `dataBytes` (the exact WAV header), possibly empty. */
  clipPrefix(dataBytes: number): Uint8Array;
}

/**
 * Chooses the container for `encoding` given the backend's PCM `format`.
 *
 * @throws ConnectError UNIMPLEMENTED for encodings without an encoder yet, INTERNAL when the
 *   backend did not send 16-bit PCM (a backend bug, not the caller's).
 */
export function chooseContainer(encoding: AudioEncoding, format: AudioFormat): AudioContainer {
  if (format.encoding !== AudioEncoding.PCM) {
    throw new ConnectError(
      `backend sent ${AudioEncoding[format.encoding]} audio; the gateway expects PCM`,
      Code.Internal,
    );
  }
  const { sampleRateHz, channels } = format;
  switch (encoding) {
    case AudioEncoding.UNSPECIFIED:
    case AudioEncoding.WAV:
      return {
        contentType: "audio/wav",
        streamPrefix: encodeWavHeader({ sampleRateHz, channels }),
        clipPrefix: (dataBytes) => encodeWavHeader({ sampleRateHz, channels, dataBytes }),
      };
    case AudioEncoding.PCM:
      return {
        contentType: `audio/L16; rate=${sampleRateHz}; channels=${channels}`,
        streamPrefix: new Uint8Array(0),
        clipPrefix: () => new Uint8Array(0),
      };
    default:
      throw new ConnectError(
        `encoding ${AudioEncoding[encoding] ?? encoding} is not available yet; use WAV or PCM`,
        Code.Unimplemented,
      );
  }
}

/** Whether the gateway can produce `encoding` at all (checked before routing). */
export function isSupportedEncoding(encoding: AudioEncoding): boolean {
  return (
    encoding === AudioEncoding.UNSPECIFIED ||
    encoding === AudioEncoding.WAV ||
    encoding === AudioEncoding.PCM
  );
}
