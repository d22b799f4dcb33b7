import { describe, expect, it } from "vitest";
import {
  alignWords,
  MEASURE_BREAK_MS,
  measuredShares,
  measuringSsml,
  sentenceWords,
} from "./word-alignment.js";

const RATE = 1000; // one sample per ms keeps the arithmetic readable

/** PCM from [kind, ms] parts: "s" sound (a loud square wave), "q" quiet. */
function pcm(parts: ["s" | "q", number][]): Int16Array {
  const samples: number[] = [];
  for (const [kind, ms] of parts) {
    for (let i = 0; i < ms; i++) samples.push(kind === "s" ? (i % 2 ? 8000 : -8000) : 0);
  }
  return Int16Array.from(samples);
}

const words = (...list: string[]) => list.map((w) => ({ word: w, token: w, textOffset: 0 }));

describe("sentenceWords", () => {
  it("finds each word's offset in the original text, punctuation left out", () => {
    const text = "Hello,   world!\nIt's 3.5 — fine.";
    const first = sentenceWords(text, "Hello, world!", 0);
    expect(first.words.map((w) => [w.word, w.token, w.textOffset])).toEqual([
      ["Hello", "Hello,", 0],
      ["world", "world!", 9],
    ]);
    const second = sentenceWords(text, "It's 3.5 — fine.", first.cursor);
    // The dash has no letter or digit: no word.
    expect(second.words.map((w) => [w.word, w.textOffset])).toEqual([
      ["It's", 16],
      ["3.5", 21],
      ["fine", 27],
    ]);
  });
});

describe("measuringSsml", () => {
  it("escapes the text and puts a break between words", () => {
    expect(measuringSsml(["a<b", "&c"])).toBe(
      `<speak>a&lt;b <break time="${MEASURE_BREAK_MS}ms"/> &amp;c</speak>`,
    );
  });
});

describe("measuredShares", () => {
  it("reads each word's length between the breaks", () => {
    const measured = pcm([
      ["q", 20],
      ["s", 100],
      ["q", 500],
      ["s", 300],
      ["q", 40], // a stop closure inside a word: not a break
      ["s", 60],
      ["q", 520],
      ["s", 50],
      ["q", 300],
    ]);
    expect(measuredShares(measured, RATE, words("a", "bcd", "e"))).toEqual([100, 400, 50]);
  });

  it("falls back to the words' lengths when the breaks do not match the words", () => {
    const measured = pcm([
      ["s", 100],
      ["q", 500],
      ["s", 100],
    ]);
    expect(measuredShares(measured, RATE, words("one", "three", "x"))).toEqual([3, 5, 1]);
  });
});

describe("alignWords", () => {
  it("spreads words over the speech span in proportion, from first to last sound", () => {
    const real = pcm([
      ["q", 10],
      ["s", 400],
      ["q", 90],
    ]);
    expect(alignWords(real, RATE, [1, 3], 100)).toEqual([
      { startMs: 10, endMs: 110 },
      { startMs: 110, endMs: 410 },
    ]);
  });

  it("puts a pause of the real audio at the word boundary nearest to it", () => {
    // Shares say boundaries at 100 and 300 ms of speaking; the real pause comes after 290 ms.
    const real = pcm([
      ["s", 290],
      ["q", 200],
      ["s", 110],
    ]);
    const spans = alignWords(real, RATE, [1, 2, 1], 100);
    expect(spans).toEqual([
      { startMs: 0, endMs: 97 },
      { startMs: 97, endMs: 290 },
      { startMs: 490, endMs: 600 },
    ]);
  });

  it("keeps spans in order and inside the audio with more pauses than boundaries", () => {
    const real = pcm([
      ["s", 100],
      ["q", 150],
      ["s", 100],
      ["q", 150],
      ["s", 100],
    ]);
    const spans = alignWords(real, RATE, [1, 1], 100);
    expect(spans).toHaveLength(2);
    expect(spans[0]?.startMs).toBe(0);
    expect(spans[1]?.endMs).toBe(600);
    expect((spans[1]?.startMs ?? 0) >= (spans[0]?.endMs ?? 0)).toBe(true);
  });
});
