/** SFML v1, StoryForge's script format: types, a parser (strict or tolerant), a printer, and segments. */
export type { SfmlParseOptions, SfmlParseResult } from "./sfml-parser.js";
export { parseSfml } from "./sfml-parser.js";
export { printSfml } from "./sfml-printer.js";
export type { SfmlCastVoice, SfmlSegment } from "./sfml-segments.js";
export { SfmlCastError, sfmlPauseMs, sfmlToSegments } from "./sfml-segments.js";
export type {
  SfmlCastMember,
  SfmlDelivery,
  SfmlLine,
  SfmlPause,
  SfmlScene,
  SfmlScript,
  SfmlSpeakerBlock,
  SfmlWarning,
} from "./sfml-types.js";
export { isSfmlParseError, SFML_DELIVERIES, SfmlParseError } from "./sfml-types.js";
