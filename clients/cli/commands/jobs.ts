/** `voxgate jobs`: lists, shows, watches, cancels durable jobs and downloads their output. */
import { toJson } from "@bufbuild/protobuf";
import { type Job, JobSchema, JobState } from "../../../gen/voxgate/v1/job_pb.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { CliError, CliUsageError, EXIT_FAILURE, EXIT_OK } from "../cli-errors.js";
import { enumLabel, formatTable } from "../format-table.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseChoiceFlag, parseFlags, parseNumberFlag } from "../parse-flags.js";
import {
  checkWritable,
  createProgressDisplay,
  describeJob,
  downloadJobOutput,
  jobKindLabel,
  parseJobId,
  requireSucceeded,
  timestampText,
  watchJobToEnd,
} from "./jobs-support.js";

const STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
const STATE_VALUES: Record<(typeof STATES)[number], JobState> = {
  queued: JobState.QUEUED,
  running: JobState.RUNNING,
  succeeded: JobState.SUCCEEDED,
  failed: JobState.FAILED,
  cancelled: JobState.CANCELLED,
};

const usage = `Usage: voxgate jobs <subcommand> [flags] [gateway flags]

Durable jobs (renders, voice analyses, batches). Needs the "jobs" scope; a token sees only the
jobs it created (an "admin" token sees all).

Subcommands:
  list [--state S] [--limit N] [--json]  jobs, newest first (S: ${STATES.join(", ")})
  get ID [--json]                        one job: state, progress, output or error
  watch ID                               follow a job's progress until it ends; exits 1 when it
                                         failed or was cancelled
  cancel ID                              stop a job (a no-op for a job that ended)
  output ID -o FILE                      download a finished job's audio ("-" for stdout); the
                                         bytes are checked against the job's sha256

${GATEWAY_FLAGS_HELP}

Examples:
  voxgate jobs list --state running
  voxgate jobs watch job_3f9a…
  voxgate jobs output job_3f9a… -o story.wav
`;

const SUBCOMMANDS = ["list", "get", "watch", "cancel", "output"] as const;

/** `voxgate jobs`. */
export const jobsCommand: CliCommand = {
  name: "jobs",
  summary: "List, watch, cancel durable jobs and download their output",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined) {
      throw new CliUsageError(`give a subcommand: ${SUBCOMMANDS.join(", ")}`);
    }
    switch (sub) {
      case "list":
        return list(rest, io);
      case "get":
        return get(rest, io);
      case "watch":
        return watch(rest, io);
      case "cancel":
        return cancel(rest, io);
      case "output":
        return output(rest, io);
      default:
        throw new CliUsageError(
          `unknown subcommand "${sub.slice(0, 40)}"; use one of ${SUBCOMMANDS.join(", ")}`,
        );
    }
  },
};

/** Parses `ID [flags]` with the gateway flags plus `extra`. */
function parseWithId<
  const E extends Record<
    string,
    { type: "string" | "boolean"; short?: string; default?: string | boolean }
  >,
>(argv: string[], extra: E, example: string) {
  const { values, positionals } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { ...GATEWAY_FLAGS, ...extra },
  });
  const [id, ...more] = positionals;
  if (more.length > 0) throw new CliUsageError(`unexpected argument "${more[0]}"`);
  return { values, jobId: parseJobId(id, example) };
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      ...GATEWAY_FLAGS,
      state: { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length > 0) throw new CliUsageError(`unexpected argument "${positionals[0]}"`);
  const state =
    values.state === undefined
      ? JobState.UNSPECIFIED
      : STATE_VALUES[parseChoiceFlag("state", values.state, STATES)];
  const limit = values.limit === undefined ? 50 : parseNumberFlag("limit", values.limit, 1, 10_000);
  const options = resolveGatewayOptions(values, io.env);
  const jobs = await withGatewayClient(io, options, "jobs", async (client) => {
    const found: Job[] = [];
    let pageToken = "";
    do {
      const page = await client.jobs.listJobs(
        { state, pageToken, pageSize: Math.min(500, limit - found.length) },
        callOptions(io),
      );
      found.push(...page.jobs);
      // A gateway that repeats a page token would loop forever.
      if (page.nextPageToken !== "" && page.nextPageToken === pageToken) {
        throw new CliError(
          `the gateway repeated page token "${pageToken.slice(0, 40)}" while listing jobs`,
        );
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && found.length < limit);
    return found.slice(0, limit);
  });
  if (values.json) {
    io.stdout.write(
      `${JSON.stringify(
        jobs.map((job) => toJson(JobSchema, job)),
        null,
        2,
      )}\n`,
    );
    return EXIT_OK;
  }
  const rows = jobs.map((job) => [
    job.id,
    jobKindLabel(job),
    enumLabel(JobState, job.state),
    `${job.progress?.doneUnits ?? 0}/${job.progress?.totalUnits ?? 0}`,
    job.createTime ? timestampText(job.createTime) : "",
  ]);
  io.stdout.write(formatTable(["ID", "KIND", "STATE", "PROGRESS", "CREATED"], rows));
  if (jobs.length === 0) io.stderr.write("no jobs\n");
  return EXIT_OK;
}

async function get(argv: string[], io: CliIo): Promise<number> {
  const { values, jobId } = parseWithId(
    argv,
    { json: { type: "boolean", default: false } },
    "voxgate jobs get job_…",
  );
  const options = resolveGatewayOptions(values, io.env);
  const { job } = await withGatewayClient(io, options, "jobs", (client) =>
    client.jobs.getJob({ jobId }, callOptions(io)),
  );
  if (!job) return EXIT_FAILURE;
  io.stdout.write(
    values.json ? `${JSON.stringify(toJson(JobSchema, job), null, 2)}\n` : describeJob(job),
  );
  return EXIT_OK;
}

async function watch(argv: string[], io: CliIo): Promise<number> {
  const { values, jobId } = parseWithId(argv, {}, "voxgate jobs watch job_…");
  const options = resolveGatewayOptions(values, io.env);
  const job = await withGatewayClient(io, options, "jobs", (client) =>
    watchJobToEnd(client, jobId, io, createProgressDisplay(io)),
  );
  io.stdout.write(describeJob(job));
  requireSucceeded(job);
  return EXIT_OK;
}

async function cancel(argv: string[], io: CliIo): Promise<number> {
  const { values, jobId } = parseWithId(argv, {}, "voxgate jobs cancel job_…");
  const options = resolveGatewayOptions(values, io.env);
  const { job } = await withGatewayClient(io, options, "jobs", (client) =>
    client.jobs.cancelJob({ jobId }, callOptions(io)),
  );
  io.stderr.write(`job ${jobId}: ${job ? enumLabel(JobState, job.state) : "unknown"}\n`);
  return EXIT_OK;
}

async function output(argv: string[], io: CliIo): Promise<number> {
  const { values, jobId } = parseWithId(
    argv,
    { output: { type: "string", short: "o" } },
    "voxgate jobs output job_… -o story.wav",
  );
  const path = values.output;
  if (path === undefined) throw new CliUsageError("pass -o FILE (or -o - for stdout)");
  if (path === "-" && io.stdout.isTTY === true) {
    throw new CliUsageError("refusing to write audio to a terminal: pass -o FILE");
  }
  await checkWritable(path);
  const options = resolveGatewayOptions(values, io.env);
  const saved = await withGatewayClient(io, options, "jobs", async (client) => {
    const { job } = await client.jobs.getJob({ jobId }, callOptions(io));
    if (!job) throw new CliError(`the gateway answered GetJob without a job`);
    requireSucceeded(job);
    return downloadJobOutput(client, job, path, io);
  });
  io.stderr.write(
    `wrote ${saved.name}: ${saved.bytes.toLocaleString("en-US")} bytes (${saved.contentType})\n`,
  );
  return EXIT_OK;
}
