/** Fake but real model servers on 127.0.0.1 for the model-server engine tests. */

export type {
  FakeOpenAiLlmKnobs,
  FakeOpenAiLlmOptions,
  FakeOpenAiLlmServer,
} from "./fake-openai-llm-server.js";
export {
  expectedReply,
  replyTokens,
  startFakeOpenAiLlmServer,
} from "./fake-openai-llm-server.js";
export type {
  FakeOpenAiKnobs,
  FakeOpenAiOptions,
  FakeOpenAiSpeechServer,
} from "./fake-openai-speech-server.js";
export { startFakeOpenAiSpeechServer } from "./fake-openai-speech-server.js";
export type { FakeQwen3Knobs, FakeQwen3TtsServer } from "./fake-qwen3-tts-server.js";
export { FAKE_PROMPT_MAGIC, startFakeQwen3TtsServer } from "./fake-qwen3-tts-server.js";
export type { PieceOptions, RecordedRequest } from "./fake-server-support.js";
export { deferred } from "./fake-server-support.js";
export type { FakeDownload, FakeTinyboxKnobs, FakeTinyboxNode } from "./fake-tinybox-node.js";
export { clipKey, startFakeTinyboxNode } from "./fake-tinybox-node.js";
export { renderTone, SAMPLES_PER_CHAR, speechPcm, toneHzFor } from "./tone.js";
