/**
 * Sentence splitting for streaming synthesis: engines speak one piece at a time, so the first audio
 * can leave after the first sentence instead of after the whole text.
 */

/** Options of {@link splitSentences}. */
export interface SplitSentencesOptions {
  /**
   * Longest piece returned, in UTF-16 code units. Longer sentences are cut at a clause mark
   * (`,` `;` `:` `，` `、` …) or whitespace, or, when there is none, mid-word.
   * @default 400
   */
  maxChars?: number;
}

// Terminators that end a sentence only before whitespace (or the end of the line), so "3.14",
// "example.com" and "e.g.," stay whole.
const SPACED_TERMINATOR = /[.!?\u2026\u203c\u2047-\u2049]+/uy;
// CJK, Devanagari and Arabic terminators: unambiguous, and CJK text puts no space after them.
const STRONG_TERMINATOR = /[\u3002\uff01\uff1f\uff61\u0964\u0965\u061f]+/uy;
// Closing quotes and brackets that belong to the sentence they follow: `He said "Go."`
const CLOSERS = /["'\u2019\u201d\u00bb\u203a)\]}\u300d\u300f\uff09\u3011\u3015\u3009\u300b]*/uy;
const CLAUSE_MARKS = new Set([",", ";", ":", "\uff0c", "\u3001", "\uff1b", "\uff1a", "\u2014"]);
const CJK_CLAUSE_MARKS = new Set(["\uff0c", "\u3001", "\uff1b", "\uff1a"]);
const LINE_BREAK = /\r\n|[\n\r\v\f\u0085\u2028\u2029]/;

// Abbreviations that are (almost) never the last word of a sentence, lower-cased without the final
// dot: titles before names, and Latin short forms inside sentences.
const NEVER_FINAL = new Set([
  "mr",
  "mrs",
  "ms",
  "mx",
  "dr",
  "prof",
  "sr",
  "jr",
  "st",
  "mt",
  "ft",
  "gen",
  "col",
  "lt",
  "sgt",
  "capt",
  "cmdr",
  "adm",
  "rev",
  "hon",
  "gov",
  "sen",
  "rep",
  "pres",
  "messrs",
  "mme",
  "mlle",
  "e.g",
  "i.e",
  "eg",
  "ie",
  "cf",
  "vs",
  "viz",
  "al",
  "approx",
  "incl",
  "esp",
  "resp",
]);

// Abbreviations that introduce a number: "No. 5", "Fig. 3", "Jan. 12", "pp. 10-12".
const BEFORE_NUMBER = new Set([
  "no",
  "nos",
  "nr",
  "fig",
  "figs",
  "vol",
  "vols",
  "p",
  "pp",
  "ch",
  "chap",
  "sec",
  "art",
  "para",
  "ed",
  "op",
  "ca",
  "jan",
  "feb",
  "mar",
  "apr",
  "jun",
  "jul",
  "aug",
  "sep",
  "sept",
  "oct",
  "nov",
  "dec",
]);

/**
 * Splits `text` into speakable pieces, in order.
 *
 * Pieces end at sentence terminators (`.` `!` `?` `…` and `。` `！` `？` `।` `؟`, with any closing
 * quotes or brackets) and at every line break. A `.` `!` `?` or `…` ends a sentence only when
 * whitespace follows and the next word does not start with a lower-case letter, so decimals
 * ("3.14"), addresses and "Wait... what?" stay whole; common abbreviations ("Dr.", "e.g.",
 * "No. 5"), initials ("J. R. R. Tolkien", "U.S.") and list numbers ("1. First") do not end a
 * sentence either. This is a heuristic: when in doubt it keeps text together, since a missing break
 * costs nothing but a longer piece, while a wrong one puts a pause mid-sentence.
 *
 * Runs of whitespace become one space and pieces are trimmed. Pieces longer than `maxChars` are
 * cut (see {@link SplitSentencesOptions.maxChars}); a surrogate pair is never cut. Never returns
 * empty pieces; empty or whitespace-only text gives `[]`. Throws `RangeError` when `maxChars` is
 * not a positive integer.
 */
export function splitSentences(text: string, options: SplitSentencesOptions = {}): string[] {
  const maxChars = options.maxChars ?? 400;
  if (!Number.isInteger(maxChars) || maxChars < 1) {
    throw new RangeError(`maxChars must be a positive integer, got ${maxChars}`);
  }
  const pieces: string[] = [];
  for (const rawLine of text.split(LINE_BREAK)) {
    const line = rawLine.replace(/\s+/gu, " ").trim();
    if (line === "") {
      continue;
    }
    for (const sentence of splitLine(line)) {
      pieces.push(...cutToLength(sentence, maxChars));
    }
  }
  return pieces;
}

function splitLine(line: string): string[] {
  const sentences: string[] = [];
  let start = 0;
  let i = 0;
  while (i < line.length) {
    const end = sentenceEndAt(line, start, i);
    if (end === undefined) {
      i++;
      continue;
    }
    const sentence = line.slice(start, end).trim();
    if (sentence !== "") {
      sentences.push(sentence);
    }
    start = end;
    i = end;
  }
  const rest = line.slice(start).trim();
  if (rest !== "") {
    sentences.push(rest);
  }
  return sentences;
}

// Returns where the sentence ends when a terminator starts at `i`, or undefined.
function sentenceEndAt(line: string, start: number, i: number): number | undefined {
  STRONG_TERMINATOR.lastIndex = i;
  if (STRONG_TERMINATOR.test(line)) {
    return skipClosers(line, STRONG_TERMINATOR.lastIndex);
  }
  SPACED_TERMINATOR.lastIndex = i;
  if (!SPACED_TERMINATOR.test(line)) {
    return undefined;
  }
  const terminator = line.slice(i, SPACED_TERMINATOR.lastIndex);
  const end = skipClosers(line, SPACED_TERMINATOR.lastIndex);
  if (end < line.length && line[end] !== " ") {
    return undefined;
  }
  const next = line.slice(end + 1, end + 3);
  if (/^\p{Ll}/u.test(next)) {
    return undefined;
  }
  if (terminator === "." && isAbbreviation(line, start, i, next)) {
    return undefined;
  }
  return end;
}

function skipClosers(line: string, from: number): number {
  CLOSERS.lastIndex = from;
  CLOSERS.test(line);
  return CLOSERS.lastIndex;
}

// Whether the word before the dot at `dot` is an abbreviation, an initial or a list number.
function isAbbreviation(line: string, start: number, dot: number, next: string): boolean {
  const wordStart = line.lastIndexOf(" ", dot - 1) + 1;
  const word = line
    .slice(Math.max(wordStart, start), dot)
    .replace(/^[("'\u201c\u2018\u00ab[]+/u, "");
  if (word === "") {
    return false;
  }
  const lower = word.toLowerCase();
  if (NEVER_FINAL.has(lower)) {
    return true;
  }
  if (BEFORE_NUMBER.has(lower) && /^\p{Nd}/u.test(next)) {
    return true;
  }
  // Initials and dotted acronyms: "J.", "U.S", "e.g" spelled with other letters.
  if (/^\p{Lu}$/u.test(word) || /^(?:\p{L}\.)+\p{L}$/u.test(word)) {
    return true;
  }
  // A number opening the sentence is a list marker ("1. First step"), not a sentence of its own.
  return /^\p{Nd}+$/u.test(word) && line.slice(start, wordStart).trim() === "";
}

function cutToLength(sentence: string, maxChars: number): string[] {
  const pieces: string[] = [];
  let rest = sentence;
  while (rest.length > maxChars) {
    const cut = findCut(rest, maxChars);
    const piece = rest.slice(0, cut).trim();
    if (piece !== "") {
      pieces.push(piece);
    }
    rest = rest.slice(cut).trim();
  }
  if (rest !== "") {
    pieces.push(rest);
  }
  return pieces;
}

// Index to cut `text` at so the first part has at most `maxChars` code units (more only when a
// single surrogate pair does not fit).
function findCut(text: string, maxChars: number): number {
  // Prefer a clause mark in the second half of the window, so pieces do not get tiny.
  for (let i = maxChars; i >= Math.ceil(maxChars / 2); i--) {
    const mark = text[i - 1];
    if (
      mark !== undefined &&
      CLAUSE_MARKS.has(mark) &&
      (text[i] === " " || CJK_CLAUSE_MARKS.has(mark))
    ) {
      return i;
    }
  }
  const space = text.lastIndexOf(" ", maxChars);
  if (space > 0) {
    return space;
  }
  const code = text.charCodeAt(maxChars - 1);
  const splitsPair = code >= 0xd800 && code <= 0xdbff;
  if (!splitsPair) {
    return maxChars;
  }
  return maxChars > 1 ? maxChars - 1 : maxChars + 1;
}
