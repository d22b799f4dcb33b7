export { type GcsEmulator, type GcsEmulatorOptions, startGcsEmulator } from "./gcs-emulator.js";
