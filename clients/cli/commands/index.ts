/**
 * The registry of `voxgate` commands: the dispatcher (`../main.ts`) finds commands here and
 * `voxgate --help` lists them in this order.
 *
 * To add a command: write `clients/cli/commands/<name>.ts` exporting a `CliCommand` (see
 * `../cli-command.ts`), import it below and append it to {@link commands}. Command names must be
 * unique (a test checks).
 */
import type { CliCommand } from "../cli-command.js";
import { agentCommand } from "./agent.js";
import { backendsCommand } from "./backends.js";
import { gatewayCommand } from "./gateway.js";
import { healthCommand } from "./health.js";
import { jobsCommand } from "./jobs.js";
import { promptsCommand } from "./prompts.js";
import { renderCommand } from "./render.js";
import { speakCommand } from "./speak.js";
import { startCommand } from "./start.js";
import { tokenCommand } from "./token.js";
import { voicesCommand } from "./voices.js";

/** Every `voxgate` command, in the order `voxgate --help` lists them. */
export const commands: readonly CliCommand[] = [
  // Client commands: talk to a running gateway (token is offline).
  speakCommand,
  voicesCommand,
  promptsCommand,
  renderCommand,
  jobsCommand,
  backendsCommand,
  healthCommand,
  tokenCommand,
  // Server commands: run the gateway, an agent, or both locally.
  gatewayCommand,
  agentCommand,
  startCommand,
];
