/**
 * Finds the voices a model server offers when an engine starts: asks the server's voice list,
 * falls back to the configured list, then to the API's well-known voices.
 */
import type { Logger } from "pino";
import type { EngineVoice } from "../tts-engine.js";
import type { ModelServerClient } from "./model-server-client.js";
import { isModelServerHttpError } from "./model-server-errors.js";

/** Most voices taken from a server's list; the rest are ignored (and logged). */
export const MAX_DISCOVERED_VOICES = 1000;

const VOICE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Options of {@link discoverVoices}. */
export interface DiscoverVoicesOptions {
  /** Client of the model server. */
  client: ModelServerClient;
  /** Path of the server's voice list. */
  path: string;
  /** Fields that may hold the array in the answer (the answer may also be the array). */
  listFields: readonly string[];
  /** Fields that may hold a voice's id in a voice object. */
  idFields: readonly string[];
  /** Voices the operator configured, used when the server lists none. */
  configured: readonly string[];
  /** Voices used when neither the server nor the operator names any. */
  builtIn: readonly string[];
  /** Longest wait for the list, in ms. */
  timeoutMs: number;
  /** Logger for where the list came from. */
  log?: Logger | undefined;
}

/** The voices found and where they came from. */
export interface DiscoveredVoices {
  /** The voices; never empty. */
  voices: EngineVoice[];
  /** `server`, `configured` or `built-in`. */
  source: "server" | "configured" | "built-in";
}

/**
 * Asks `GET path` for the voice list. Any failure (no such endpoint, unreachable server, timeout,
 * a list that is empty or not understood) falls back to `configured`, then `builtIn`, with a
 * warning: an agent should start even while its model server is still loading. Voice entries may
 * be strings or objects with an id (`idFields`) and optional `name`, `language`/`languages` and
 * `gender`; ids that are not 1-128 safe characters are skipped.
 */
export async function discoverVoices(options: DiscoverVoicesOptions): Promise<DiscoveredVoices> {
  const { log } = options;
  try {
    const response = await options.client.request({
      method: "GET",
      path: options.path,
      accept: "application/json",
      signal: new AbortController().signal,
      timeoutMs: options.timeoutMs,
    });
    const voices = parseVoiceList(await response.json(), options.listFields, options.idFields);
    if (voices.length > 0) {
      log?.info({ voices: voices.length, path: options.path }, "voices listed by the model server");
      return { voices, source: "server" };
    }
    log?.warn({ path: options.path }, "the model server's voice list is empty or not understood");
  } catch (err) {
    // A server without a voice list is normal (OpenAI has none); anything else deserves a warning.
    const absent = isModelServerHttpError(err) && (err.status === 404 || err.status === 405);
    log?.[absent ? "debug" : "warn"](
      { err: { message: (err as Error).message } },
      "could not read the model server's voice list",
    );
  }
  if (options.configured.length > 0) {
    return { voices: options.configured.map(simpleVoice), source: "configured" };
  }
  return { voices: options.builtIn.map(simpleVoice), source: "built-in" };
}

/** Reads a voice list answer; returns the voices it understood (possibly none). */
export function parseVoiceList(
  value: unknown,
  listFields: readonly string[],
  idFields: readonly string[],
): EngineVoice[] {
  let list: unknown = value;
  if (!Array.isArray(list) && list && typeof list === "object") {
    const record = list as Record<string, unknown>;
    list = listFields.map((f) => record[f]).find(Array.isArray);
  }
  if (!Array.isArray(list)) return [];
  const voices: EngineVoice[] = [];
  const seen = new Set<string>();
  for (const entry of list.slice(0, MAX_DISCOVERED_VOICES)) {
    const voice = toVoice(entry, idFields);
    if (voice && !seen.has(voice.id)) {
      seen.add(voice.id);
      voices.push(voice);
    }
  }
  return voices;
}

function toVoice(entry: unknown, idFields: readonly string[]): EngineVoice | undefined {
  if (typeof entry === "string") return VOICE_ID.test(entry) ? simpleVoice(entry) : undefined;
  if (!entry || typeof entry !== "object") return undefined;
  const record = entry as Record<string, unknown>;
  const id = idFields.map((f) => record[f]).find((v) => typeof v === "string" && VOICE_ID.test(v));
  if (typeof id !== "string") return undefined;
  const name = typeof record.name === "string" ? record.name.slice(0, 128) : id;
  const languages = Array.isArray(record.languages)
    ? record.languages.filter((l): l is string => typeof l === "string").slice(0, 16)
    : typeof record.language === "string"
      ? [record.language]
      : [];
  const gender =
    record.gender === "female" || record.gender === "male" ? (record.gender as string) : "";
  return { id, name, languages, gender };
}

function simpleVoice(id: string): EngineVoice {
  return { id, name: id, languages: [], gender: "" };
}
