import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { isDatabaseUnavailableError } from "../database/database-errors.js";
import { storageFaultOf } from "../object-store/storage-faults.js";

/**
 * The ConnectError callers see for an infrastructure fault, or undefined for other errors: a
 * database that cannot answer is UNAVAILABLE (503), a full object store RESOURCE_EXHAUSTED, a
 * read-only one UNAVAILABLE. Messages name no host, port or path; the original stays the cause.
 */
export function infrastructureErrorOf(err: unknown): ConnectError | undefined {
  if (err instanceof ConnectError) return undefined;
  if (isDatabaseUnavailableError(err)) {
    return new ConnectError(err.message, Code.Unavailable, undefined, undefined, err);
  }
  const fault = storageFaultOf(err);
  if (fault) {
    const code = fault.kind === "full" ? Code.ResourceExhausted : Code.Unavailable;
    return new ConnectError(fault.message, code, undefined, undefined, err);
  }
  return undefined;
}

/**
 * Translates infrastructure faults thrown by any handler (see {@link infrastructureErrorOf}) in
 * one place, for unary calls and streams alike; connect-node would otherwise answer UNKNOWN with
 * the raw message (`connect ECONNREFUSED 10.0.0.5:5432`).
 */
export function createFaultInterceptor(): Interceptor {
  const translate = (err: unknown): unknown => infrastructureErrorOf(err) ?? err;
  return (next) => async (req) => {
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      throw translate(err);
    }
    if (!res.stream) return res;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* res.message;
        } catch (err) {
          throw translate(err);
        }
      })(),
    };
  };
}
