import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSfml } from "./sfml-parser.js";
import { printSfml } from "./sfml-printer.js";
import { sfmlPauseMs, sfmlToSegments } from "./sfml-segments.js";
import { SFML_DELIVERIES, SfmlParseError, type SfmlScript } from "./sfml-types.js";

/** The example of STORYFORGE.md §4.1 (valid against the doc). */
const EXAMPLE = `# SFML v1

cast:
  Narrator: terracotta-glow
  Maris: lunar-violet

scene scene-1 "Arrival":
  Narrator:
    - The lighthouse stood silent on the cliff.
    PAUSE: 0.25
    - The sea breathed below.
  PAUSE: 0.60
  Maris:
    - {delivery=calm} I can hear it.
`;

describe("SFML v1 grammar", () => {
  it("parses the doc's example into the renderer's order", () => {
    const { script, warnings } = parseSfml(EXAMPLE, { mode: "strict" });
    expect(warnings).toEqual([]);
    expect(script.cast).toEqual([
      { name: "Narrator", voiceId: "terracotta-glow" },
      { name: "Maris", voiceId: "lunar-violet" },
    ]);
    const segments = sfmlToSegments(script, {
      Narrator: { voice: "en-us", engine: "" },
      Maris: { voice: "en-gb", engine: "espeak-ng" },
    });
    expect(segments.map((s) => [s.text, s.voice, s.params.delivery, s.pauseAfterMs])).toEqual([
      ["The lighthouse stood silent on the cliff.", "en-us", undefined, 250],
      ["The sea breathed below.", "en-us", undefined, 600],
      ["I can hear it.", "en-gb", "calm", 0],
    ]);
    expect(sfmlPauseMs(script)).toBe(850);
  });

  const STRICT_ERRORS: Array<[string, string, number, number, string]> = [
    ["tab", "# SFML v1\ncast:\n\tNarrator: a\n", 3, 1, "tab_not_allowed"],
    [
      "no header",
      "cast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    - Hi.\n",
      1,
      1,
      "bad_header",
    ],
    ["cast with =", "# SFML v1\ncast:\n  Narrator = a\n", 3, 3, "bad_cast_line"],
    ["bad voice id", "# SFML v1\ncast:\n  Narrator: Bad_Id\n", 3, 13, "bad_voice_id"],
    ["duplicate cast", "# SFML v1\ncast:\n  Narrator: a\n  Narrator: b\n", 4, 3, "duplicate_cast"],
    [
      "content outside scene",
      "# SFML v1\ncast:\n  Narrator: a\nhello\n",
      4,
      1,
      "content_outside_scene",
    ],
    ["bad scene header", "# SFML v1\ncast:\n  Narrator: a\nscene one:\n", 4, 1, "bad_scene_header"],
    [
      "unknown speaker",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Bob:\n    - Hi.\n",
      5,
      3,
      "unknown_speaker",
    ],
    [
      "empty bullet",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    -\n",
      6,
      5,
      "empty_bullet",
    ],
    [
      "bad delivery",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    - {delivery=loud} Hi.\n",
      6,
      7,
      "bad_delivery",
    ],
    [
      "empty block",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n  PAUSE: 1\n",
      5,
      3,
      "empty_speaker_block",
    ],
    [
      "bullet without header",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n    - Hi.\n",
      5,
      5,
      "missing_speaker_header",
    ],
    [
      "2-space bullet",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n  - Hi.\n",
      6,
      3,
      "unrecognized_line",
    ],
    [
      "bad pause",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    - Hi.\n    PAUSE: soon\n",
      7,
      12,
      "bad_pause",
    ],
    [
      "odd indent",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n      - Hi.\n",
      6,
      7,
      "bad_indent",
    ],
    [
      "no narrator",
      "# SFML v1\ncast:\n  Maris: a\nscene scene-1:\n  Maris:\n    - Hi.\n",
      1,
      1,
      "missing_narrator",
    ],
    ["no scene", "# SFML v1\ncast:\n  Narrator: a\n", 3, 1, "no_scenes"],
    [
      "unrecognized",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    Hi there\n",
      6,
      5,
      "unrecognized_line",
    ],
  ];
  for (const [name, text, line, column, rule] of STRICT_ERRORS) {
    it(`strict: ${name} → line ${line}, column ${column}, ${rule}`, () => {
      let error: unknown;
      try {
        parseSfml(text, { mode: "strict" });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SfmlParseError);
      expect(error).toMatchObject({ line, column, rule });
      expect((error as Error).message).toMatch(
        new RegExp(`^line ${line}, column ${column}: ${rule}: `),
      );
    });
  }

  it("refuses text over 20,000 characters (too_long) in both modes", () => {
    const text = `# SFML v1\n${"#".repeat(20_001)}`;
    expect(() => parseSfml(text)).toThrow(/too_long/);
  });

  /** §4.2's faults: the tolerant mode reads each, with a warning naming the strict rule. */
  const TOLERATED: Array<[string, string, string, (s: SfmlScript) => void]> = [
    [
      "missing # SFML v1",
      "cast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    - Hi.\n",
      "bad_header",
      (s) => expect(s.scenes[0]?.items).toHaveLength(1),
    ],
    [
      "Name = id and Name -> id cast lines",
      "# SFML v1\ncast:\n  Narrator = a\n  Maris -> b\nscene scene-1:\n  Maris:\n    - Hi.\n",
      "bad_cast_line",
      (s) =>
        expect(s.cast).toEqual([
          { name: "Narrator", voiceId: "a" },
          { name: "Maris", voiceId: "b" },
        ]),
    ],
    [
      "2-space bullets",
      "# SFML v1\ncast:\n  Narrator: a\n  Maris: b\nscene scene-1:\n  Maris:\n  - Hi.\n  - There.\n",
      "unrecognized_line",
      (s) =>
        expect(s.scenes[0]?.items[0]).toMatchObject({
          name: "Maris",
          items: [{ text: "Hi." }, { text: "There." }],
        }),
    ],
    [
      "bullets without a header go to Narrator",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n    - Once upon a time.\n",
      "missing_speaker_header",
      (s) =>
        expect(s.scenes[0]?.items[0]).toMatchObject({
          name: "Narrator",
          items: [{ text: "Once upon a time." }],
        }),
    ],
    [
      "{delivery=x} - text",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n    {delivery=shout} - Run!\n",
      "unrecognized_line",
      (s) =>
        expect(s.scenes[0]?.items[0]).toMatchObject({
          items: [{ text: "Run!", delivery: "shout" }],
        }),
    ],
    [
      "a speaker block without lines is dropped",
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  Narrator:\n  Narrator:\n    - Hi.\n",
      "empty_speaker_block",
      (s) => expect(s.scenes[0]?.items).toHaveLength(1),
    ],
  ];
  for (const [name, text, rule, check] of TOLERATED) {
    it(`tolerant: ${name} (strict: ${rule})`, () => {
      expect(() => parseSfml(text, { mode: "strict" })).toThrow(new RegExp(rule));
      const { script, warnings } = parseSfml(text);
      expect(warnings.map((w) => w.rule)).toContain(rule);
      check(script);
    });
  }

  it("reads scene-level PAUSE in strict mode (the doc allows it; Cloud's strict validator does not)", () => {
    const { script } = parseSfml(EXAMPLE, { mode: "strict" });
    expect(script.scenes[0]?.items[1]).toEqual({ kind: "pause", seconds: 0.6 });
  });

  it("a pause before the first line becomes a leading silent segment", () => {
    const { script } = parseSfml(
      "# SFML v1\ncast:\n  Narrator: a\nscene scene-1:\n  PAUSE: 1.5\n  Narrator:\n    - Hi.\n",
    );
    const segments = sfmlToSegments(script, { Narrator: { voice: "v", engine: "" } });
    expect(segments.map((s) => [s.text, s.pauseAfterMs])).toEqual([
      ["", 1500],
      ["Hi.", 0],
    ]);
  });
});

// Property: printing any script and parsing it back (strictly) gives the same script. Names,
// texts and pauses are drawn from what the grammar can carry (a bullet cannot start with "{",
// names are not PAUSE, pauses are whole centiseconds up to 10 s); bounded at 200 runs.
const nameArb = fc
  .stringMatching(/^[A-Z][a-z]{1,8}( [A-Z][a-z]{1,6})?$/)
  .filter((n) => n !== "PAUSE");
const voiceArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/);
const textArb = fc
  .stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ,.!?'"-]{0,60}$/)
  .map((t) => t.trim())
  .filter((t) => t.length > 0);
const pauseArb = fc
  .integer({ min: 0, max: 1000 })
  .map((cs) => ({ kind: "pause" as const, seconds: cs / 100 }));
const deliveryArb = fc.option(fc.constantFrom(...SFML_DELIVERIES), { nil: undefined });

const scriptArb = fc.uniqueArray(nameArb, { minLength: 1, maxLength: 4 }).chain((others) => {
  const names = ["Narrator", ...others.filter((n) => n !== "Narrator")];
  const lineArb = fc.record({
    kind: fc.constant("line" as const),
    text: textArb,
    delivery: deliveryArb,
  });
  const blockArb = fc
    .record({
      name: fc.constantFrom(...names),
      first: lineArb,
      rest: fc.array(fc.oneof(lineArb, pauseArb), { maxLength: 4 }),
    })
    .map(({ name, first, rest }) => ({ kind: "speaker" as const, name, items: [first, ...rest] }));
  const sceneArb = (i: number) =>
    fc.record({
      id: fc.constant(`scene-${i + 1}`),
      title: fc.option(fc.stringMatching(/^[A-Za-z0-9 ,.!?'-]{0,30}$/), { nil: undefined }),
      items: fc.array(fc.oneof(blockArb, pauseArb), { maxLength: 5 }),
    });
  return fc.record({
    cast: fc.tuple(...names.map((name) => voiceArb.map((voiceId) => ({ name, voiceId })))),
    scenes: fc
      .integer({ min: 1, max: 3 })
      .chain((count) => fc.tuple(...Array.from({ length: count }, (_, i) => sceneArb(i)))),
  });
});

describe("SFML printer", () => {
  it("parse(print(x)) = x", () => {
    fc.assert(
      fc.property(scriptArb, (script) => {
        const parsed = parseSfml(printSfml(script as SfmlScript), { mode: "strict" });
        expect(parsed.warnings).toEqual([]);
        expect(parsed.script).toEqual(script);
      }),
      { numRuns: 200 },
    );
  });
});
