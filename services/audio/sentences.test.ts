import { describe, expect, it } from "vitest";
import { splitSentences } from "./sentences.js";

describe("splitSentences", () => {
  it.each<[string, string, string[]]>([
    [
      "simple sentences",
      "Hello there. How are you? Fine!",
      ["Hello there.", "How are you?", "Fine!"],
    ],
    ["a single sentence without terminator", "Hello from voxgate", ["Hello from voxgate"]],
    ["decimals", "Pi is 3.14 roughly. Next.", ["Pi is 3.14 roughly.", "Next."]],
    ["a number ending a sentence", "I have 3. You have 4.", ["I have 3.", "You have 4."]],
    ["addresses", "Visit example.com today. Bye.", ["Visit example.com today.", "Bye."]],
    [
      "titles",
      "Dr. Smith met Mrs. Jones. They talked.",
      ["Dr. Smith met Mrs. Jones.", "They talked."],
    ],
    [
      "e.g. and i.e.",
      "Use fruit, e.g. Apples, i.e. Red ones. Done.",
      ["Use fruit, e.g. Apples, i.e. Red ones.", "Done."],
    ],
    [
      "vs. and et al.",
      "Smith et al. Showed it. Cats vs. Dogs.",
      ["Smith et al. Showed it.", "Cats vs. Dogs."],
    ],
    [
      "abbreviations before numbers",
      "See Fig. 3 and No. 5 on Jan. 12. Then stop.",
      ["See Fig. 3 and No. 5 on Jan. 12.", "Then stop."],
    ],
    ["no as a word", "I said no. Then I left.", ["I said no.", "Then I left."]],
    ["initials", "J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]],
    ["dotted acronyms", "The U.S. Army came. It left.", ["The U.S. Army came.", "It left."]],
    [
      "etc. before a lower-case word",
      "Apples, pears, etc. and more. End.",
      ["Apples, pears, etc. and more.", "End."],
    ],
    [
      "etc. ending a sentence",
      "Apples, pears, etc. Then more.",
      ["Apples, pears, etc.", "Then more."],
    ],
    ["list numbers", "1. First step\n2. Second step", ["1. First step", "2. Second step"]],
    ["closing quotes", 'He said "Go." She went.', ['He said "Go."', "She went."]],
    ["closing brackets", "It works (mostly.) Good.", ["It works (mostly.)", "Good."]],
    [
      "a quoted question before lower case",
      '"Really?" she asked. Yes.',
      ['"Really?" she asked.', "Yes."],
    ],
    ["ellipsis before lower case", "Wait... what? No.", ["Wait... what?", "No."]],
    ["ellipsis before upper case", "Wait... What now?", ["Wait...", "What now?"]],
    ["the ellipsis character", "Hmm\u2026 Okay.", ["Hmm\u2026", "Okay."]],
    ["repeated marks", "Really?! Yes!!! Ok.", ["Really?!", "Yes!!!", "Ok."]],
    ["Chinese", "你好。今天天气很好！你呢？", ["你好。", "今天天气很好！", "你呢？"]],
    [
      "Japanese with quotes",
      "「行こう。」と彼は言った。はい。",
      ["「行こう。」", "と彼は言った。", "はい。"],
    ],
    ["Hindi danda", "नमस्ते। आप कैसे हैं?", ["नमस्ते।", "आप कैसे हैं?"]],
    ["Arabic question mark", "كيف حالك؟ أنا بخير.", ["كيف حالك؟", "أنا بخير."]],
    ["line breaks", "Title\nFirst line\r\nSecond line", ["Title", "First line", "Second line"]],
    ["paragraphs", "One.\n\n\nTwo.", ["One.", "Two."]],
    ["collapsed whitespace", "  Lots \t of   space.  ", ["Lots of space."]],
    ["leading dash text", "-v fr is not an option.", ["-v fr is not an option."]],
    ["German ordinals (known limit)", "Am 3. Mai.", ["Am 3.", "Mai."]],
  ])("splits %s", (_name, text, expected) => {
    expect(splitSentences(text)).toEqual(expected);
  });

  it.each(["", "   ", "\n\n\t \r\n", "\u2028"])("returns [] for %j", (text) => {
    expect(splitSentences(text)).toEqual([]);
  });

  it("never returns empty pieces", () => {
    for (const text of ["...", ". . .", "!\n?\n.", "。。。", "a. . b"]) {
      for (const piece of splitSentences(text, { maxChars: 2 })) {
        expect(piece.trim()).not.toBe("");
      }
    }
  });

  it("cuts long sentences at whitespace", () => {
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ");
    const pieces = splitSentences(words, { maxChars: 40 });
    expect(pieces.length).toBeGreaterThan(1);
    for (const piece of pieces) {
      expect(piece.length).toBeLessThanOrEqual(40);
      expect(piece).toMatch(/^word\d+( word\d+)*$/);
    }
    expect(pieces.join(" ")).toBe(words);
  });

  it("prefers a clause mark in the second half of the window", () => {
    const text = "alpha beta gamma delta, epsilon zeta eta theta iota kappa";
    expect(splitSentences(text, { maxChars: 30 })).toEqual([
      "alpha beta gamma delta,",
      "epsilon zeta eta theta iota",
      "kappa",
    ]);
  });

  it("cuts CJK text without spaces after a clause mark, else mid-run", () => {
    expect(splitSentences("一二三四五，六七八九十一二三", { maxChars: 8 })).toEqual([
      "一二三四五，",
      "六七八九十一二三",
    ]);
    expect(splitSentences("一二三四五六七八九十", { maxChars: 4 })).toEqual([
      "一二三四",
      "五六七八",
      "九十",
    ]);
  });

  it("never cuts a surrogate pair", () => {
    const text = "😀😀😀😀😀";
    const pieces = splitSentences(text, { maxChars: 3 });
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) {
      expect(piece.length).toBeLessThanOrEqual(3);
      expect(piece).toMatch(/^(?:😀)+$/u);
    }
    expect(splitSentences("😀😀", { maxChars: 1 })).toEqual(["😀", "😀"]);
  });

  it("applies the 400-character default", () => {
    const text = `${"a".repeat(399)} ${"b".repeat(10)}`;
    expect(splitSentences(text)).toEqual(["a".repeat(399), "b".repeat(10)]);
    expect(splitSentences("c".repeat(400))).toEqual(["c".repeat(400)]);
  });

  it.each([0, -1, 1.5, Number.NaN])("rejects maxChars %s", (maxChars) => {
    expect(() => splitSentences("Hello.", { maxChars })).toThrow(RangeError);
  });
});
