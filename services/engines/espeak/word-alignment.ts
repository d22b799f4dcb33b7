/**
 * Word timings for espeak-ng, found from its audio. The npm build is the command-line program,
 * whose word events never leave the library, so each sentence is spoken a second time with a
 * break of {@link MEASURE_BREAK_MS} between its words (SSML), and that run shows where each word
 * starts and ends: the breaks are the only silences that long. The word lengths found there are
 * then laid onto the real audio: its speech span and its own long pauses (commas, colons) anchor
 * the words, and within each stretch between pauses the words share the time in the measured
 * proportions.
 */

/** Break put between words in the measuring run, in ms; longer than any pause espeak-ng makes at 80+ wpm inside a clause. */
export const MEASURE_BREAK_MS = 500;

/** A sample below this magnitude (of 32767) counts as silence. */
const SILENCE_LEVEL = 200;

/** A run of silent samples, `[start, end)` in samples. */
interface Silence {
  start: number;
  end: number;
}

/** One word's time in the sentence's audio, in ms from its first sample. */
export interface WordSpan {
  /** Start, in ms. */
  startMs: number;
  /** End, in ms; never before `startMs`. */
  endMs: number;
}

/** A word of a sentence: as written, and where it starts in the request's text. */
export interface SentenceWord {
  /** The word without the punctuation around it. */
  word: string;
  /** The token as it stands in the sentence (punctuation included), spoken in the measuring run. */
  token: string;
  /** Offset of `word` in the request's text, in UTF-16 code units. */
  textOffset: number;
}

const WORDLIKE = /[\p{L}\p{N}]/u;
const EDGE_PUNCTUATION = /^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu;

/**
 * The words of `sentence` (space-separated tokens with a letter or digit), with their offsets in
 * `text` found from `cursor` on; returns the words and the cursor after the last one. Sentences
 * come from `splitSentences(text)` in order (whitespace collapsed), so each token is found again
 * in `text`; one that is not (a piece cut inside a word) takes the cursor's offset.
 */
export function sentenceWords(
  text: string,
  sentence: string,
  cursor: number,
): { words: SentenceWord[]; cursor: number } {
  const words: SentenceWord[] = [];
  let at = cursor;
  for (const token of sentence.split(" ")) {
    if (!WORDLIKE.test(token)) continue;
    const word = token.replace(EDGE_PUNCTUATION, "");
    const found = text.indexOf(word, at);
    const textOffset = found === -1 ? at : found;
    if (found !== -1) at = found + word.length;
    words.push({ word, token, textOffset });
  }
  return { words, cursor: at };
}

/** The SSML text of the measuring run: the tokens, escaped, with a break between each two. */
export function measuringSsml(tokens: readonly string[]): string {
  const escaped = tokens.map((t) =>
    t.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;"),
  );
  return `<speak>${escaped.join(` <break time="${MEASURE_BREAK_MS}ms"/> `)}</speak>`;
}

/** Silent runs of `pcm` at least `minSamples` long, in order. */
function silences(pcm: Int16Array, minSamples: number): Silence[] {
  const runs: Silence[] = [];
  let start = -1;
  for (let i = 0; i <= pcm.length; i++) {
    const quiet = i < pcm.length && Math.abs(pcm[i] as number) < SILENCE_LEVEL;
    if (quiet && start < 0) start = i;
    if (!quiet && start >= 0) {
      if (i - start >= minSamples) runs.push({ start, end: i });
      start = -1;
    }
  }
  return runs;
}

/** First and one-past-last non-silent sample; `[0, 0)` for silence only. */
function speechSpan(pcm: Int16Array): { start: number; end: number } {
  let start = 0;
  while (start < pcm.length && Math.abs(pcm[start] as number) < SILENCE_LEVEL) start++;
  let end = pcm.length;
  while (end > start && Math.abs(pcm[end - 1] as number) < SILENCE_LEVEL) end--;
  return { start, end };
}

/** Silences strictly inside `span` (the leading and trailing silence excluded). */
function innerSilences(pcm: Int16Array, minSamples: number): Silence[] {
  const span = speechSpan(pcm);
  return silences(pcm, minSamples).filter((s) => s.start > span.start && s.end < span.end);
}

/**
 * Each word's share of the speaking time, from the measuring run: the lengths between its breaks.
 * When the breaks found are not one fewer than the words (a token espeak-ng splits or drops),
 * the shares fall back to the words' lengths in characters.
 */
export function measuredShares(
  measured: Int16Array,
  sampleRateHz: number,
  words: readonly SentenceWord[],
): number[] {
  const fallback = words.map((w) => Math.max(1, w.word.length));
  if (words.length < 2) return fallback;
  // Breaks are 500 ms; espeak-ng's own pauses merge into them (they fall between words too).
  const breaks = innerSilences(
    measured,
    Math.round((sampleRateHz * MEASURE_BREAK_MS * 0.7) / 1000),
  );
  if (breaks.length !== words.length - 1) return fallback;
  const span = speechSpan(measured);
  const edges = [span.start, ...breaks.flatMap((b) => [b.start, b.end]), span.end];
  const shares: number[] = [];
  for (let i = 0; i < words.length; i++) {
    shares.push(Math.max(1, (edges[2 * i + 1] as number) - (edges[2 * i] as number)));
  }
  return shares;
}

/**
 * Lays words with the measured `shares` onto the real audio of their sentence: from its first to
 * its last sound, split at its own pauses of at least `pauseMs` (each put at the word boundary
 * nearest to where the shares place it), the words of each stretch sharing its time in
 * proportion. Times are in ms from the sentence's first sample, in order, never overlapping.
 */
export function alignWords(
  real: Int16Array,
  sampleRateHz: number,
  shares: readonly number[],
  pauseMs: number,
): WordSpan[] {
  const n = shares.length;
  if (n === 0) return [];
  const span = speechSpan(real);
  const toMs = (sample: number) => Math.round((sample / sampleRateHz) * 1000);
  if (span.end <= span.start) {
    return shares.map(() => ({ startMs: toMs(span.start), endMs: toMs(span.start) }));
  }
  const pauses = innerSilences(real, Math.round((sampleRateHz * pauseMs) / 1000));
  const pausedSamples = pauses.reduce((sum, p) => sum + (p.end - p.start), 0);
  const speaking = span.end - span.start - pausedSamples;
  const total = shares.reduce((a, b) => a + b, 0);
  // Where each word boundary falls in speaking time (pauses left out) by the shares alone.
  const boundaries: number[] = [];
  let sum = 0;
  for (let i = 0; i < n - 1; i++) {
    sum += shares[i] as number;
    boundaries.push((sum / total) * speaking);
  }
  // Each pause goes to the nearest boundary after the previous pause's; extra pauses stay inside
  // a stretch (a word with a pause in it).
  const cuts: { after: number; pause: Silence }[] = [];
  let spoken = 0;
  let next = 0;
  let lastPauseEnd = span.start;
  for (const pause of pauses) {
    spoken += pause.start - lastPauseEnd;
    lastPauseEnd = pause.end;
    let best = -1;
    for (let j = next; j < boundaries.length; j++) {
      if (
        best === -1 ||
        Math.abs((boundaries[j] as number) - spoken) <
          Math.abs((boundaries[best] as number) - spoken)
      ) {
        best = j;
      }
    }
    if (best === -1) break;
    cuts.push({ after: best, pause });
    next = best + 1;
  }
  // Stretches between cuts, each spread over its words by share.
  const spans: WordSpan[] = [];
  let first = 0;
  let from = span.start;
  for (const stretch of [...cuts, { after: n - 1, pause: { start: span.end, end: span.end } }]) {
    const last = stretch.after;
    const to = stretch.pause.start;
    const inStretch = shares.slice(first, last + 1);
    const stretchTotal = inStretch.reduce((a, b) => a + b, 0);
    let at = from;
    for (let i = first; i <= last; i++) {
      const end = i === last ? to : at + ((shares[i] as number) / stretchTotal) * (to - from);
      spans.push({ startMs: toMs(at), endMs: toMs(end) });
      at = end;
    }
    first = last + 1;
    from = stretch.pause.end;
  }
  return spans;
}
