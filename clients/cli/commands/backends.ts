/** `voxgate backends`: lists the gateway's backend registry with health and load. */
import { toJson } from "@bufbuild/protobuf";
import {
  type Backend,
  BackendKind,
  BackendSchema,
  BackendState,
  BreakerState,
} from "../../../gen/voxgate/v1/backend_admin_pb.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { EXIT_OK } from "../cli-errors.js";
import { enumLabel, formatTable } from "../format-table.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseFlags } from "../parse-flags.js";

const usage = `Usage: voxgate backends [--json] [gateway flags]

Lists every backend of the gateway's registry: agents, serverless endpoints, in-process engines,
with their state (pending, ready, unhealthy, draining; "(breaker open)" or "(breaker half-open)"
when its circuit breaker keeps calls away), load (calls in flight / slots), routing priority (lower
is preferred), engines, version, address and last error. Needs the "admin" scope.

Flags:
  --json  print a JSON array of backends instead of a table

${GATEWAY_FLAGS_HELP}
`;

/** `voxgate backends`. */
export const backendsCommand: CliCommand = {
  name: "backends",
  summary: "List backends with health and load (admin)",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { ...GATEWAY_FLAGS, json: { type: "boolean", default: false } },
    });
    const options = resolveGatewayOptions(values, io.env);
    const { backends } = await withGatewayClient(io, options, "admin", (client) =>
      client.backends.listBackends({}, callOptions(io)),
    );

    if (values.json) {
      const json = backends.map((backend) => toJson(BackendSchema, backend));
      io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      return EXIT_OK;
    }
    const headers = [
      "ID",
      "KIND",
      "STATE",
      "IN-FLIGHT/SLOTS",
      "PRIORITY",
      "ENGINES",
      "GPUS",
      "VERSION",
      "ADDRESS",
      "LAST ERROR",
    ];
    io.stdout.write(formatTable(headers, backends.map(backendRow)));
    if (backends.length === 0) io.stderr.write("no backends: is an agent connected?\n");
    return EXIT_OK;
  },
};

function backendRow(backend: Backend): string[] {
  const breaker =
    backend.breaker === BreakerState.OPEN || backend.breaker === BreakerState.HALF_OPEN
      ? ` (breaker ${enumLabel(BreakerState, backend.breaker)})`
      : "";
  return [
    backend.id,
    enumLabel(BackendKind, backend.kind),
    enumLabel(BackendState, backend.state) + breaker,
    `${backend.inFlight}/${backend.capabilities?.slots ?? 0}`,
    String(backend.priority),
    [...new Set((backend.capabilities?.engines ?? []).map((engine) => engine.id))].join(","),
    gpuSummary(backend),
    backend.version,
    backend.address,
    backend.lastError,
  ];
}

/** One GPU per entry: `name util% used/total MiB power W temp °C`, figures it lacks left out. */
function gpuSummary(backend: Backend): string {
  return (backend.load?.gpus ?? [])
    .map((g) => {
      const parts = [`${g.index}:${g.name}`];
      if (g.utilizationPercent !== undefined) parts.push(`${Math.round(g.utilizationPercent)}%`);
      if (g.memoryUsedMib !== undefined && g.memoryTotalMib !== undefined) {
        parts.push(`${Math.round(g.memoryUsedMib)}/${Math.round(g.memoryTotalMib)}MiB`);
      }
      if (g.powerWatts !== undefined) parts.push(`${Math.round(g.powerWatts)}W`);
      if (g.temperatureC !== undefined) parts.push(`${Math.round(g.temperatureC)}C`);
      return parts.join(" ");
    })
    .join("; ");
}
