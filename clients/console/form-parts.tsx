/** Pieces the console's forms share: the voice and format pickers, and the status and error lines. */
import type { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import type { Voice } from "../../gen/voxgate/v1/voice_pb.js";

/** A `voice` select: "default" (the engine's own), then every voice by name. */
export function VoiceSelect(props: { voices: readonly Voice[] }) {
  return (
    <label>
      Voice
      <select name="voice">
        <option value="">default</option>
        {props.voices.map((v) => (
          <option key={v.id} value={v.id}>
            {v.name || v.id}
          </option>
        ))}
      </select>
    </label>
  );
}

/** A `format` select of `formats` (the first is the default), each shown as `labelOf` says. */
export function FormatSelect(props: {
  formats: readonly { label: string; encoding: AudioEncoding }[];
  labelOf?: (label: string) => string;
}) {
  const labelOf = props.labelOf ?? ((label: string) => label);
  return (
    <label>
      Format
      <select name="format">
        {props.formats.map((f) => (
          <option key={f.encoding} value={f.encoding}>
            {labelOf(f.label)}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * The outcome lines under a form: `status` (what the last action did; tests read it by
 * `data-testid`) and `error` (why it failed); each is left out while empty.
 */
export function StatusLines(props: { status: string; error: string; testId: string }) {
  return (
    <>
      {props.status && (
        <p class="muted" data-testid={props.testId}>
          {props.status}
        </p>
      )}
      {props.error && <p class="error">{props.error}</p>}
    </>
  );
}
