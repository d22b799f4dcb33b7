/**
 * The web console: bundling its browser sources (`clients/console/`) and serving it at `/`.
 */
export type { BundleConsoleOptions, ConsoleFiles } from "./console-bundle.js";
export { bundleConsole, CONSOLE_FILE_NAMES } from "./console-bundle.js";
export type { ConsoleFrontendOptions, ConsoleSource } from "./console-frontend.js";
export {
  CONSOLE_ROUTES,
  createConsoleFrontend,
  defaultConsoleSource,
} from "./console-frontend.js";
