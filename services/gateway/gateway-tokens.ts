import { readFileSync } from "node:fs";
import { CLIENT_SCOPES } from "../auth/scopes.js";
import { hashToken } from "../auth/token-codec.js";
import type { TokenEntry } from "../auth/token-store.js";
import { SettingsError, type SettingValues } from "../config/settings.js";
import { type gatewaySettings, tokenEntriesSchema } from "./gateway-settings.js";

/** The settings tokens come from. */
export type TokenSettings = Pick<
  SettingValues<typeof gatewaySettings>,
  "tokens" | "tokensFile" | "clientToken" | "agentToken"
>;

/**
 * Every token the gateway accepts: the `tokens` list (config file or `VOXGATE_TOKENS_JSON`), the
 * tokens file's list, and the plain `VOXGATE_TOKEN` / `VOXGATE_AGENT_TOKEN` (hashed here). Read at
 * start and again on every reload.
 *
 * @throws SettingsError naming the tokens file when it cannot be read, is not JSON or holds an
 *   invalid entry.
 */
export function gatewayTokensFromSettings(settings: TokenSettings): TokenEntry[] {
  const tokens: TokenEntry[] = [...settings.tokens];
  if (settings.tokensFile) tokens.push(...readTokensFile(settings.tokensFile));
  if (settings.clientToken) {
    tokens.push({
      name: "env:VOXGATE_TOKEN",
      sha256: hashToken(settings.clientToken),
      scopes: CLIENT_SCOPES,
    });
  }
  if (settings.agentToken) {
    tokens.push({
      name: "env:VOXGATE_AGENT_TOKEN",
      sha256: hashToken(settings.agentToken),
      scopes: ["agent"],
    });
  }
  return tokens;
}

function readTokensFile(path: string): TokenEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new SettingsError(`tokens file ${path}: ${(err as Error).message}`);
  }
  const result = tokenEntriesSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
    throw new SettingsError(`tokens file ${path}: ${problems.join("; ")}`);
  }
  return result.data;
}
