/** Voices: the catalog, cloning from an uploaded recording, and a spoken sample of each voice. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { type Voice, VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import type { VoxgateBrowserClient } from "../browser.js";
import { playStreamedAudio } from "./audio-player.js";
import { StatusLines } from "./form-parts.js";
import { enumName, errorText, formatBytes } from "./format.js";

/** The voice catalog as the console holds it. */
export interface VoicesState {
  list: Voice[];
  error: string;
  /** Lists the voices again. */
  reload(): Promise<void>;
}

/** Voices listed at most, in one page: a console lists, it does not export. */
const PAGE_SIZE = 200;

/** Loads the voice catalog once, and again on `reload()`. */
export function useVoices(client: VoxgateBrowserClient): VoicesState {
  const [list, setList] = useState<Voice[]>([]);
  const [error, setError] = useState("");
  const reload = useCallback(async () => {
    try {
      const { voices } = await client.voices.listVoices({ pageSize: PAGE_SIZE });
      setList(voices);
      setError("");
    } catch (err) {
      setError(errorText(err));
    }
  }, [client]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { list, error, reload };
}

/** The voices table and the clone form. */
export function VoicesPanel(props: {
  client: VoxgateBrowserClient;
  voices: VoicesState;
  engines: string[];
}) {
  const { client, voices } = props;
  const audio = useRef<HTMLAudioElement>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [filter, setFilter] = useState("");
  const needle = filter.trim().toLowerCase();
  // Cloned voices first (the ones people made), then presets; each group by name.
  const shown = voices.list
    .filter(
      (v) =>
        needle === "" ||
        `${v.name} ${v.id} ${v.languages.join(" ")}`.toLowerCase().includes(needle),
    )
    .sort(
      (a, b) =>
        Number(b.type === VoiceType.CLONED) - Number(a.type === VoiceType.CLONED) ||
        a.name.localeCompare(b.name),
    );

  async function clone(event: Event) {
    event.preventDefault();
    const formElement = event.currentTarget as HTMLFormElement;
    const form = new FormData(formElement);
    const file = form.get("reference");
    if (!(file instanceof File) || file.size === 0) {
      setError("choose a recording (WAV, MP3, FLAC or Ogg) of the voice to clone");
      return;
    }
    setError("");
    setBusy(true);
    setStatus(`Uploading ${file.name} and cloning…`);
    try {
      const { voice } = await client.voices.createVoice(
        {
          name: String(form.get("name") ?? "").trim(),
          referenceAudio: new Uint8Array(await file.arrayBuffer()),
          referenceText: String(form.get("referenceText") ?? "").trim(),
          engine: String(form.get("engine") ?? "").trim(),
          language: String(form.get("language") ?? "").trim(),
        },
        // Cloning runs a model on a backend: give it longer than a catalog call.
        { timeoutMs: 120_000 },
      );
      setStatus(`Cloned voice "${voice?.name}" (${voice?.id}).`);
      formElement.reset();
      await voices.reload();
    } catch (err) {
      setStatus("");
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  async function sample(voice: Voice) {
    const element = audio.current;
    if (!element) return;
    setError("");
    setStatus(`Playing a sample of ${voice.name || voice.id}…`);
    try {
      const result = await playStreamedAudio(
        element,
        client.tts.streamSynthesize({
          text: `This is ${voice.name || "a voice"}, speaking through voxgate.`,
          voice: voice.id,
          encoding: AudioEncoding.MP3,
        }),
      );
      setStatus(`Sample of ${voice.name || voice.id}: ${formatBytes(result.bytes)}.`);
    } catch (err) {
      setStatus("");
      setError(errorText(err));
    }
  }

  return (
    <section data-testid="voices">
      <h2>Voices</h2>
      {voices.error && <p class="error">{voices.error}</p>}
      <input
        type="search"
        placeholder={`filter ${voices.list.length} voices`}
        value={filter}
        onInput={(event) => setFilter((event.currentTarget as HTMLInputElement).value)}
      />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Engine · model</th>
              <th>Languages</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((v) => (
              <tr key={v.id} data-voice={v.name}>
                <td>
                  <strong>{v.name || v.id}</strong>
                  <div class="muted">{v.id}</div>
                </td>
                <td>{enumName(VoiceType, v.type).toLowerCase()}</td>
                <td>
                  {v.engine}
                  {v.model?.family ? ` · ${v.model.family}` : ""}
                </td>
                <td>{v.languages.join(", ")}</td>
                <td>
                  <button type="button" onClick={() => sample(v)}>
                    Play sample
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {voices.list.length === 0 && !voices.error && <p class="muted">No voices yet.</p>}
      {/* biome-ignore lint/a11y/useMediaCaption: speech of the text on this page, which is its transcript */}
      <audio ref={audio} controls data-testid="voice-audio" />
      <h3>Clone a voice</h3>
      <form onSubmit={clone} class="grid" data-testid="clone-form">
        <label>
          Name
          <input name="name" required maxLength={200} />
        </label>
        <label>
          Recording
          <input name="reference" type="file" accept="audio/*" required />
        </label>
        <label>
          Engine
          <input name="engine" list="voice-engines" placeholder="any that can clone" />
          <datalist id="voice-engines">
            {props.engines.map((e) => (
              <option key={e} value={e} />
            ))}
          </datalist>
        </label>
        <label>
          Language
          <input name="language" placeholder="e.g. en-us" />
        </label>
        <label class="wide">
          What the recording says (helps most engines)
          <textarea name="referenceText" rows={2} />
        </label>
        <div class="wide">
          <button type="submit" disabled={busy}>
            Clone
          </button>
        </div>
      </form>
      <StatusLines status={status} error={error} testId="voices-status" />
    </section>
  );
}
