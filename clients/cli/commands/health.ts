/** `voxgate health`: asks the gateway's grpc.health.v1 service whether it is serving. */
import { HealthCheckResponse_ServingStatus } from "../../../gen/health/v1/health_pb.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { EXIT_FAILURE, EXIT_OK } from "../cli-errors.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseFlags } from "../parse-flags.js";

const usage = `Usage: voxgate health [--service NAME] [gateway flags]

Calls grpc.health.v1.Health/Check and prints the status: SERVING, NOT_SERVING, UNKNOWN or
SERVICE_UNKNOWN. Needs no token. Exits 0 when SERVING and 1 otherwise, so it fits scripts and
container health checks.

Flags:
  --service NAME  a service to check, e.g. voxgate.v1.TtsService (default: the whole gateway)

${GATEWAY_FLAGS_HELP}
`;

/** `voxgate health`. */
export const healthCommand: CliCommand = {
  name: "health",
  summary: "Check whether the gateway is serving (grpc.health.v1)",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { ...GATEWAY_FLAGS, service: { type: "string", default: "" } },
    });
    const options = resolveGatewayOptions(values, io.env);
    const response = await withGatewayClient(io, options, undefined, (client) =>
      client.health.check({ service: values.service }, callOptions(io)),
    );
    const status =
      HealthCheckResponse_ServingStatus[response.status] ?? `status ${response.status}`;
    io.stdout.write(`${status}\n`);
    return response.status === HealthCheckResponse_ServingStatus.SERVING ? EXIT_OK : EXIT_FAILURE;
  },
};
