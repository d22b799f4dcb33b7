/** The playground: text, voice, engine, format and speed → audio that plays while it streams. */
import { useRef, useState } from "preact/hooks";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import type { Voice } from "../../gen/voxgate/v1/voice_pb.js";
import type { VoxgateBrowserClient } from "../browser.js";
import { playStreamedAudio } from "./audio-player.js";
import { FormatSelect, StatusLines, VoiceSelect } from "./form-parts.js";
import { errorText, formatBytes } from "./format.js";

/** Formats offered, the first being the default: MP3 is the one that plays while it streams. */
export const FORMATS: readonly { label: string; encoding: AudioEncoding }[] = [
  { label: "MP3 (plays while streaming)", encoding: AudioEncoding.MP3 },
  { label: "WAV", encoding: AudioEncoding.WAV },
  { label: "Opus (Ogg)", encoding: AudioEncoding.OPUS },
  { label: "FLAC", encoding: AudioEncoding.FLAC },
];

/** The playground form and its player. */
export function PlaygroundPanel(props: {
  client: VoxgateBrowserClient;
  voices: Voice[];
  engines: string[];
}) {
  const audio = useRef<HTMLAudioElement>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function speak(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const element = audio.current;
    if (!element) return;
    setError("");
    setBusy(true);
    setStatus("Synthesizing…");
    let backend = "";
    try {
      const stream = props.client.tts.streamSynthesize(
        {
          text: String(form.get("text") ?? ""),
          voice: String(form.get("voice") ?? ""),
          engine: String(form.get("engine") ?? "").trim(),
          encoding: Number(form.get("format")) as AudioEncoding,
          speed: Number(form.get("speed") ?? 1),
        },
        { onHeader: (headers) => (backend = headers.get("x-voxgate-backend") ?? "") },
      );
      const result = await playStreamedAudio(element, stream);
      setStatus(
        `${formatBytes(result.bytes)} of ${result.contentType}, first audio after ` +
          `${Math.round(result.firstChunkMs ?? 0)} ms${result.streamed ? ", played while streaming" : ""}` +
          (backend ? `, served by ${backend}` : ""),
      );
    } catch (err) {
      setStatus("");
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section data-testid="playground">
      <h2>Playground</h2>
      <form onSubmit={speak} class="grid">
        <label class="wide">
          Text
          <textarea name="text" rows={3} required maxLength={5000}>
            Hello from voxgate. This sentence is synthesized on a backend and streamed to your
            browser.
          </textarea>
        </label>
        <VoiceSelect voices={props.voices} />
        <label>
          Engine
          <input name="engine" list="playground-engines" placeholder="any" />
          <datalist id="playground-engines">
            {props.engines.map((e) => (
              <option key={e} value={e} />
            ))}
          </datalist>
        </label>
        <FormatSelect formats={FORMATS} />
        <label>
          Speed
          <input name="speed" type="number" min="0.25" max="4" step="0.05" value="1" />
        </label>
        <div class="wide row">
          <button type="submit" disabled={busy} data-testid="speak">
            Speak
          </button>
          {/* biome-ignore lint/a11y/useMediaCaption: speech of the text on this page, which is its transcript */}
          <audio ref={audio} controls data-testid="playground-audio" />
        </div>
      </form>
      <StatusLines status={status} error={error} testId="playground-status" />
    </section>
  );
}
