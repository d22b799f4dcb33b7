/**
 * SFML v1, StoryForge's script format (STORYFORGE.md §4): a cast of speakers and their voices,
 * scenes of speaker blocks whose bullets are spoken lines, and pauses.
 */

/** Delivery tags a bullet may carry. */
export const SFML_DELIVERIES = ["neutral", "calm", "urgent", "dramatic", "shout"] as const;

/** A delivery tag. */
export type SfmlDelivery = (typeof SFML_DELIVERIES)[number];

/** One cast entry: a speaker name and the StoryForge voice id it speaks with. */
export interface SfmlCastMember {
  /** Speaker name as used in block headers. */
  name: string;
  /** StoryForge voice id (`sf_voices.id`). */
  voiceId: string;
}

/** A spoken line (bullet). */
export interface SfmlLine {
  kind: "line";
  /** Text to speak, trimmed, never empty. */
  text: string;
  /** Delivery tag; undefined when the bullet has none. */
  delivery: SfmlDelivery | undefined;
}

/** A pause, in seconds. */
export interface SfmlPause {
  kind: "pause";
  /** Length of the silence, in seconds (0 or more). */
  seconds: number;
}

/** A speaker block: the lines (and pauses) one speaker says in a row. */
export interface SfmlSpeakerBlock {
  kind: "speaker";
  /** Speaker name (in the cast). */
  name: string;
  /** Lines and speaker-level pauses, in order; at least one line. */
  items: Array<SfmlLine | SfmlPause>;
}

/** A scene. */
export interface SfmlScene {
  /** Scene id, `scene-<n>`. */
  id: string;
  /** Title; undefined when the header has none. */
  title: string | undefined;
  /** Speaker blocks and scene-level pauses, in order. */
  items: Array<SfmlSpeakerBlock | SfmlPause>;
}

/** A parsed script. */
export interface SfmlScript {
  /** Cast in script order. */
  cast: SfmlCastMember[];
  /** Scenes in script order. */
  scenes: SfmlScene[];
}

/** A fault the tolerant parser accepted, with where it was. */
export interface SfmlWarning {
  /** 1-based line. */
  line: number;
  /** Rule the strict grammar would have broken (e.g. `bad_header`). */
  rule: string;
  /** What was assumed. */
  message: string;
}

/** Raised for text that is not SFML v1; names the line, column and rule. */
export class SfmlParseError extends Error {
  override readonly name = "SfmlParseError";
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** Rule code, Cloud's where it has one (`tab_not_allowed`, `unknown_speaker`, …). */
  readonly rule: string;

  /** Creates the error; the message reads `line L, column C: <rule>: <detail>`. */
  constructor(line: number, column: number, rule: string, detail: string) {
    super(`line ${line}, column ${column}: ${rule}: ${detail}`);
    this.line = line;
    this.column = column;
    this.rule = rule;
  }
}

/** Returns whether `err` is an {@link SfmlParseError}. */
export function isSfmlParseError(err: unknown): err is SfmlParseError {
  return err instanceof SfmlParseError;
}
