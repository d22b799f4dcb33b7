import { readFileSync } from "node:fs";

/** voxgate's version, from package.json; reported in agent hellos and `voxgate --version`. */
export const VOXGATE_VERSION: string = (() => {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  const { version } = JSON.parse(text) as { version?: unknown };
  return typeof version === "string" ? version : "unknown";
})();
