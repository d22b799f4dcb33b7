import {
  SFML_DELIVERIES,
  type SfmlCastMember,
  type SfmlDelivery,
  type SfmlLine,
  SfmlParseError,
  type SfmlPause,
  type SfmlScene,
  type SfmlScript,
  type SfmlSpeakerBlock,
  type SfmlWarning,
} from "./sfml-types.js";

/** Options of {@link parseSfml}. */
export interface SfmlParseOptions {
  /**
   * `strict` holds the text to the v1 grammar (Cloud's validator, plus scene-level PAUSE, which
   * its own doc allows). `tolerant` (default) also accepts the faults saved SFML shows
   * (STORYFORGE.md §4.2): a missing `# SFML v1`; `Name = id` and `Name -> id` cast lines; 2-space
   * bullets; bullets (and pauses) before any speaker header, attributed to Narrator;
   * `{delivery=x} - text`; odd indentation; a speaker block without lines (dropped). Each
   * accepted fault is reported as a warning.
   * @default "tolerant"
   */
  mode?: "strict" | "tolerant";
  /** Longest text, in characters. @default 20000 (Cloud's limit) */
  maxChars?: number;
}

/** What {@link parseSfml} returns. */
export interface SfmlParseResult {
  /** The script. */
  script: SfmlScript;
  /** Faults the tolerant mode accepted (always empty in strict mode). */
  warnings: SfmlWarning[];
}

const HEADER = "# SFML v1";
const VOICE_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NAME = "[A-Za-z0-9][A-Za-z0-9 _.'-]{0,63}?";
const CAST_STRICT = new RegExp(`^(${NAME})\\s*:\\s*(\\S+)$`);
const CAST_TOLERANT = new RegExp(`^(${NAME})\\s*(?::|=|->)\\s*(\\S+)$`);
const SCENE = /^scene\s+(scene-\d+)\s*(?:"([^"]*)")?\s*:\s*$/;
const SPEAKER = new RegExp(`^(${NAME})\\s*(?:\\{delivery=([^}]*)\\})?\\s*:$`);
const PAUSE = /^PAUSE:\s*(.*?)\s*$/;
const SECONDS = /^\d+(?:\.\d+)?$/;
const DELIVERY_FIRST = /^\{delivery=([^}]*)\}\s*-(?:\s+(.*))?$/;
const DELIVERIES: ReadonlySet<string> = new Set(SFML_DELIVERIES);
const NARRATOR = "Narrator";

/**
 * Parses SFML v1 text. Comments (`#` lines) and blank lines are ignored.
 *
 * @throws SfmlParseError naming the 1-based line and column and the rule (Cloud's codes where it
 * has them: `tab_not_allowed`, `too_long`, `bad_header`, `content_outside_scene`,
 * `unknown_speaker`, `empty_bullet`, `bad_delivery`, `empty_speaker_block`,
 * `missing_speaker_header`, `unrecognized_line`; and `bad_cast_line`, `bad_voice_id`,
 * `duplicate_cast`, `missing_narrator`, `bad_scene_header`, `bad_pause`, `bad_indent`,
 * `no_scenes`).
 */
export function parseSfml(text: string, options: SfmlParseOptions = {}): SfmlParseResult {
  const tolerant = (options.mode ?? "tolerant") === "tolerant";
  const maxChars = options.maxChars ?? 20_000;
  const warnings: SfmlWarning[] = [];
  if (text.length > maxChars) {
    throw new SfmlParseError(
      1,
      1,
      "too_long",
      `the script has ${text.length} characters; the limit is ${maxChars}`,
    );
  }
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const cast: SfmlCastMember[] = [];
  const castNames = new Map<string, string>();
  const scenes: SfmlScene[] = [];
  let section: "start" | "cast" | "scenes" = "start";
  let scene: SfmlScene | undefined;
  let block:
    | { block: SfmlSpeakerBlock; line: number; delivery: SfmlDelivery | undefined }
    | undefined;
  let sawHeader = false;
  let sawContent = false;
  let lastLine = 1;

  const fail = (line: number, column: number, rule: string, detail: string): never => {
    throw new SfmlParseError(line, column, rule, detail);
  };
  const warn = (line: number, rule: string, message: string, column = 1) => {
    if (!tolerant) fail(line, column, rule, message);
    warnings.push({ line, rule, message });
  };
  const closeBlock = () => {
    if (!block) return;
    if (!block.block.items.some((item) => item.kind === "line")) {
      if (!tolerant) {
        fail(block.line, 3, "empty_speaker_block", `${block.block.name} has no line`);
      }
      warnings.push({
        line: block.line,
        rule: "empty_speaker_block",
        message: `${block.block.name} has no line; the block is dropped`,
      });
      scene?.items.splice(scene.items.indexOf(block.block), 1);
    }
    block = undefined;
  };
  const speakerOf = (name: string, line: number, column: number): string => {
    const known = castNames.get(name);
    if (known === undefined) fail(line, column, "unknown_speaker", `${name} is not in the cast`);
    return name;
  };
  const openBlock = (name: string, line: number, delivery: SfmlDelivery | undefined) => {
    closeBlock();
    const speaker: SfmlSpeakerBlock = { kind: "speaker", name, items: [] };
    scene?.items.push(speaker);
    block = { block: speaker, line, delivery };
  };
  const parseDelivery = (raw: string, line: number, column: number): SfmlDelivery => {
    const value = raw.trim().toLowerCase();
    if (!DELIVERIES.has(value)) {
      fail(line, column, "bad_delivery", `delivery must be one of ${SFML_DELIVERIES.join(", ")}`);
    }
    return value as SfmlDelivery;
  };
  const parsePause = (raw: string, line: number, column: number): SfmlPause => {
    if (!SECONDS.test(raw)) {
      fail(
        line,
        column,
        "bad_pause",
        `PAUSE takes decimal seconds such as 0.40, not "${raw.slice(0, 20)}"`,
      );
    }
    return { kind: "pause", seconds: Number(raw) };
  };
  /** `- text` or `- {delivery=x} text`, starting at `column`. */
  const parseBullet = (
    body: string,
    line: number,
    column: number,
    forced?: SfmlDelivery,
  ): SfmlLine => {
    let rest = body.replace(/^-\s*/, "");
    let delivery = forced;
    if (rest.startsWith("{")) {
      const tag = /^\{delivery=([^}]*)\}\s*/.exec(rest);
      if (!tag)
        fail(line, column + 2, "bad_delivery", "a bullet may start with {delivery=<tag>} only");
      delivery = parseDelivery((tag as RegExpExecArray)[1] as string, line, column + 2);
      rest = rest.slice((tag as RegExpExecArray)[0].length);
    }
    const spoken = rest.trim();
    if (!spoken) fail(line, column, "empty_bullet", "the bullet has no text");
    return { kind: "line", text: spoken, delivery: delivery ?? block?.delivery };
  };
  /** The current block, or (tolerant) a Narrator block opened for a headerless bullet. */
  const currentBlock = (line: number, what: string): SfmlSpeakerBlock => {
    if (block) return block.block;
    if (!tolerant)
      fail(line, 5, "missing_speaker_header", `${what} comes before any speaker header`);
    if (!castNames.has(NARRATOR))
      fail(
        line,
        5,
        "missing_speaker_header",
        `${what} has no speaker and the cast has no Narrator`,
      );
    warnings.push({
      line,
      rule: "missing_speaker_header",
      message: `${what} attributed to ${NARRATOR}`,
    });
    openBlock(NARRATOR, line, undefined);
    return (block as unknown as { block: SfmlSpeakerBlock }).block;
  };

  for (const [index, raw] of lines.entries()) {
    const n = index + 1;
    const tab = raw.indexOf("\t");
    if (tab >= 0) fail(n, tab + 1, "tab_not_allowed", "indent with spaces (2 or 4), not tabs");
    const line = raw.trimEnd();
    if (line.trim() === "") continue;
    lastLine = n;
    const indent = line.length - line.trimStart().length;
    const content = line.trimStart();
    if (!sawHeader) {
      sawHeader = true;
      if (content !== HEADER) warn(n, "bad_header", `the first line should be "${HEADER}"`);
    }
    if (content.startsWith("#")) continue;
    sawContent = true;

    if (indent === 0) {
      if (content === "cast:") {
        if (section !== "start")
          fail(n, 1, "unrecognized_line", "the cast comes once, before the scenes");
        section = "cast";
        continue;
      }
      const header = SCENE.exec(content);
      if (header) {
        if (section === "start" && !tolerant)
          fail(n, 1, "content_outside_scene", "a scene before the cast");
        closeBlock();
        section = "scenes";
        scene = { id: header[1] as string, title: header[2], items: [] };
        scenes.push(scene);
        continue;
      }
      if (content.startsWith("scene")) {
        fail(n, 1, "bad_scene_header", 'write scene scene-<n> "Title":');
      }
      fail(
        n,
        1,
        section === "scenes" ? "unrecognized_line" : "content_outside_scene",
        `"${content.slice(0, 40)}"`,
      );
    }

    if (section === "cast") {
      if (indent !== 2) warn(n, "bad_indent", "cast lines are indented 2 spaces", indent + 1);
      let match = CAST_STRICT.exec(content);
      if (!match && tolerant) {
        match = CAST_TOLERANT.exec(content);
        if (match)
          warnings.push({
            line: n,
            rule: "bad_cast_line",
            message: "cast line written with = or ->",
          });
      }
      if (!match) fail(n, indent + 1, "bad_cast_line", "write Name: voice_id");
      const name = (match as RegExpExecArray)[1] as string;
      const voiceId = (match as RegExpExecArray)[2] as string;
      if (!VOICE_ID.test(voiceId)) {
        fail(
          n,
          line.lastIndexOf(voiceId) + 1,
          "bad_voice_id",
          `"${voiceId.slice(0, 70)}" is not a voice id ([a-z0-9][a-z0-9_-]{0,63})`,
        );
      }
      if (castNames.has(name)) fail(n, indent + 1, "duplicate_cast", `${name} is cast twice`);
      castNames.set(name, voiceId);
      cast.push({ name, voiceId });
      continue;
    }
    if (section !== "scenes" || !scene) {
      fail(n, indent + 1, "content_outside_scene", "content before the first scene");
    }

    // Inside a scene: 2 spaces for speaker headers and scene pauses, 4 for bullets and block pauses.
    let level = indent;
    if (indent !== 2 && indent !== 4) {
      warn(n, "bad_indent", "indent with 2 or 4 spaces", indent + 1);
      level = indent < 3 ? 2 : 4;
    }
    const column = indent + 1;
    const pause = PAUSE.exec(content);
    const deliveryFirst = DELIVERY_FIRST.exec(content);
    if (deliveryFirst) {
      warn(n, "unrecognized_line", "{delivery=x} - text read as - {delivery=x} text", column);
      const delivery = parseDelivery(deliveryFirst[1] as string, n, column);
      currentBlock(n, "a bullet").items.push(
        parseBullet(`- ${deliveryFirst[2] ?? ""}`, n, column, delivery),
      );
      continue;
    }
    if (level === 2) {
      if (pause) {
        closeBlock();
        scene?.items.push(parsePause(pause[1] as string, n, column + 7));
        continue;
      }
      if (content.startsWith("-")) {
        warn(
          n,
          "unrecognized_line",
          "a 2-space bullet read as a line of the current speaker",
          column,
        );
        currentBlock(n, "a bullet").items.push(parseBullet(content, n, column));
        continue;
      }
      const header = SPEAKER.exec(content);
      if (!header) fail(n, column, "unrecognized_line", `"${content.slice(0, 40)}"`);
      const [, name, delivery] = header as RegExpExecArray;
      const speaker = speakerOf(name as string, n, column);
      openBlock(
        speaker,
        n,
        delivery === undefined ? undefined : parseDelivery(delivery, n, column),
      );
      continue;
    }
    if (pause) {
      if (!block && tolerant) {
        warnings.push({
          line: n,
          rule: "missing_speaker_header",
          message: "a 4-space PAUSE outside a block read as a scene pause",
        });
        scene?.items.push(parsePause(pause[1] as string, n, column + 7));
        continue;
      }
      currentBlock(n, "a PAUSE").items.push(parsePause(pause[1] as string, n, column + 7));
      continue;
    }
    if (content.startsWith("-")) {
      currentBlock(n, "a bullet").items.push(parseBullet(content, n, column));
      continue;
    }
    fail(n, column, "unrecognized_line", `"${content.slice(0, 40)}"`);
  }
  closeBlock();
  if (!sawContent) fail(1, 1, "no_scenes", "the script is empty");
  if (!castNames.has(NARRATOR)) {
    if (!tolerant) fail(1, 1, "missing_narrator", "the cast must name a Narrator");
  }
  if (scenes.length === 0) fail(lastLine, 1, "no_scenes", "the script has no scene");
  return { script: { cast, scenes }, warnings };
}
