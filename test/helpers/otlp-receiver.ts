/**
 * A small OTLP/HTTP trace receiver for tests (the collector's `/v1/traces` endpoint, written from
 * the OTLP specification): it takes `http/json` and `http/protobuf` export requests, answers 200
 * with an empty ExportTraceServiceResponse, and keeps every span with the service that sent it.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One received span, ids in lowercase hex. */
export interface ReceivedSpan {
  /** `service.name` of the process that exported it. */
  service: string;
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** SpanKind number of the OTLP enum (1 internal, 2 server, 3 client). */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  /** Status code (0 unset, 1 ok, 2 error). */
  statusCode: number;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  url: string;
  /** Every span received so far. */
  readonly spans: ReceivedSpan[];
  /** Content types of the export requests received so far. */
  readonly contentTypes: string[];
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1, any free port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const type = String(req.headers["content-type"] ?? "");
      contentTypes.push(type);
      const body = Buffer.concat(chunks);
      try {
        spans.push(...(type.includes("json") ? fromJson(body) : fromProtobuf(body)));
      } catch (err) {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
        return;
      }
      if (type.includes("json")) {
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else {
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type JsonValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
type JsonAttribute = { key: string; value: JsonValue };

function fromJson(body: Buffer): ReceivedSpan[] {
  const request = JSON.parse(body.toString("utf8")) as {
    resourceSpans?: Array<{
      resource?: { attributes?: JsonAttribute[] };
      scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
    }>;
  };
  const out: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const service = String(attributesOf(rs.resource?.attributes)["service.name"] ?? "");
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        out.push({
          service,
          traceId: String(span.traceId ?? ""),
          spanId: String(span.spanId ?? ""),
          parentSpanId: String(span.parentSpanId ?? ""),
          name: String(span.name),
          kind: Number(span.kind ?? 0),
          startNs: BigInt(String(span.startTimeUnixNano)),
          endNs: BigInt(String(span.endTimeUnixNano)),
          attributes: attributesOf(span.attributes as JsonAttribute[] | undefined),
          statusCode: Number((span.status as { code?: number } | undefined)?.code ?? 0),
        });
      }
    }
  }
  return out;
}

function attributesOf(
  list: JsonAttribute[] | undefined,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
  }
  return out;
}

/** Fields of one protobuf message: number → raw values (bytes for length-delimited, bigint else). */
function fields(buf: Uint8Array): Map<number, Array<Uint8Array | bigint>> {
  const out = new Map<number, Array<Uint8Array | bigint>>();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    while (true) {
      const byte = buf[pos++];
      if (byte === undefined) throw new Error("truncated varint");
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: Uint8Array | bigint;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = new DataView(buf.buffer, buf.byteOffset + pos, 8).getBigUint64(0, true);
      pos += 8;
    } else if (wire === 2) {
      const length = Number(varint());
      value = buf.subarray(pos, pos + length);
      pos += length;
    } else if (wire === 5) {
      value = BigInt(new DataView(buf.buffer, buf.byteOffset + pos, 4).getUint32(0, true));
      pos += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const bytesOf = (v: Uint8Array | bigint | undefined) =>
  v instanceof Uint8Array ? v : new Uint8Array();
const hex = (v: Uint8Array | bigint | undefined) => Buffer.from(bytesOf(v)).toString("hex");
const text = (v: Uint8Array | bigint | undefined) => Buffer.from(bytesOf(v)).toString("utf8");

function protoAttributes(list: Array<Uint8Array | bigint> | undefined) {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const f = fields(bytesOf(kv));
    const key = text(f.get(1)?.[0]);
    const any = fields(bytesOf(f.get(2)?.[0]));
    if (any.has(1)) out[key] = text(any.get(1)?.[0]);
    else if (any.has(2)) out[key] = any.get(2)?.[0] === 1n;
    else if (any.has(3)) out[key] = Number(BigInt.asIntN(64, any.get(3)?.[0] as bigint));
    else if (any.has(4)) {
      const view = new DataView(new ArrayBuffer(8));
      view.setBigUint64(0, any.get(4)?.[0] as bigint, true);
      out[key] = view.getFloat64(0, true);
    }
  }
  return out;
}

/** ExportTraceServiceRequest → ResourceSpans(1) → Resource(1) / ScopeSpans(2) → Span(2). */
function fromProtobuf(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of fields(body).get(1) ?? []) {
    const resourceSpans = fields(bytesOf(rs));
    const resource = fields(bytesOf(resourceSpans.get(1)?.[0]));
    const service = String(protoAttributes(resource.get(1))["service.name"] ?? "");
    for (const ss of resourceSpans.get(2) ?? []) {
      for (const raw of fields(bytesOf(ss)).get(2) ?? []) {
        const span = fields(bytesOf(raw));
        const status = fields(bytesOf(span.get(15)?.[0]));
        out.push({
          service,
          traceId: hex(span.get(1)?.[0]),
          spanId: hex(span.get(2)?.[0]),
          parentSpanId: hex(span.get(4)?.[0]),
          name: text(span.get(5)?.[0]),
          kind: Number(span.get(6)?.[0] ?? 0n),
          startNs: (span.get(7)?.[0] as bigint | undefined) ?? 0n,
          endNs: (span.get(8)?.[0] as bigint | undefined) ?? 0n,
          attributes: protoAttributes(span.get(9)),
          statusCode: Number(status.get(3)?.[0] ?? 0n),
        });
      }
    }
  }
  return out;
}
