/** `voxgate token create`: makes a bearer token offline and prints the config entry for it. */
import { CLIENT_SCOPES, isScope, SCOPES, type Scope } from "../../../services/auth/scopes.js";
import { generateToken, hashToken } from "../../../services/auth/token-codec.js";
import type { TokenEntry } from "../../../services/auth/token-store.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { CliUsageError, EXIT_OK } from "../cli-errors.js";
import { parseFlags } from "../parse-flags.js";

const usage = `Usage: voxgate token create --scopes LIST [--name NAME] [--json]

Creates a bearer token offline; no gateway is needed. The token is printed once: the gateway
stores only its SHA-256 hash, so keep the token now (a secret manager, VOXGATE_TOKEN).

Scopes (comma-separated):
  tts      speak (TtsService)
  voices   the voice catalog and clone prompts
  jobs     jobs: renders, analyses, batches
  admin    backends: list, watch, drain; metrics
  agent    GPU agents dialling in; valid on the agent port only, so it cannot be combined
           with the client scopes above

Flags:
  --scopes LIST  scopes the token grants, e.g. tts,voices (required)
  --name NAME    name in gateway logs and config: letters, digits, . _ @ -
                 (default token-<first 8 hex digits of the hash>)
  --json         print {"token": …, "entry": {…}} as one JSON object

Output: the token on the first line of stdout, then the entry to add to the gateway's token
list as JSON. Explanations go to stderr.

Example:
  voxgate token create --scopes tts,voices --name storyforge-cloud
`;

/** `voxgate token create`. */
export const tokenCommand: CliCommand = {
  name: "token",
  summary: "Create a bearer token and its config entry (offline)",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    const [subcommand, ...rest] = argv;
    if (subcommand !== "create") {
      throw new CliUsageError(
        subcommand === undefined
          ? "missing subcommand: voxgate token create --scopes LIST"
          : `unknown subcommand "${subcommand}": the only one is "create"`,
      );
    }
    const { values } = parseFlags({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        scopes: { type: "string" },
        name: { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
    if (values.scopes === undefined) {
      throw new CliUsageError(
        `--scopes is required: a comma-separated list of ${SCOPES.join(", ")}`,
      );
    }
    const scopes = parseScopes(values.scopes);
    const token = generateToken();
    const sha256 = hashToken(token);
    const name = values.name ?? `token-${sha256.slice(0, 8)}`;
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) {
      throw new CliUsageError(
        `--name "${name}" must be 1 to 64 letters, digits, dots, underscores, @ or dashes`,
      );
    }
    const entry = { name, sha256, scopes } satisfies TokenEntry;

    if (values.json) {
      io.stdout.write(`${JSON.stringify({ token, entry }, null, 2)}\n`);
      return EXIT_OK;
    }
    io.stderr.write("New token; it is shown only this once, so store it now:\n");
    io.stdout.write(`${token}\n`);
    io.stderr.write(
      "Add this entry to the gateway's token list. The gateway stores only the SHA-256 hash, so\n" +
        "the token cannot be recovered from its config; to revoke it, delete the entry:\n",
    );
    io.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
    if (scopes.includes("agent")) {
      io.stderr.write(
        "This is an agent token: it opens the gateway's agent port and nothing else.\n",
      );
    }
    return EXIT_OK;
  },
};

/** Parses `--scopes`: known names, no repeats kept, agent alone. */
function parseScopes(list: string): Scope[] {
  const names = list
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  if (names.length === 0) {
    throw new CliUsageError(`--scopes is empty: give some of ${SCOPES.join(", ")}`);
  }
  const scopes: Scope[] = [];
  for (const name of names) {
    if (!isScope(name)) {
      throw new CliUsageError(`unknown scope "${name}": valid scopes are ${SCOPES.join(", ")}`);
    }
    if (!scopes.includes(name)) scopes.push(name);
  }
  if (scopes.includes("agent") && scopes.length > 1) {
    throw new CliUsageError(
      `agent tokens are for the agent port only: create the agent token and a client token (${CLIENT_SCOPES.join(", ")}) separately`,
    );
  }
  return scopes;
}
