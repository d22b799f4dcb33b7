export { createVoiceHandler, type VoiceHandlerOptions } from "./voice-handler.js";
