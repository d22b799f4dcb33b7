import { describe, expect, it } from "vitest";
import { tracingOptionsFromEnv } from "./tracing-settings.js";

describe("tracingOptionsFromEnv", () => {
  it("is off without OTEL variables, and off when disabled whatever else is set", () => {
    expect(tracingOptionsFromEnv({}, "voxgate-gateway")).toBeUndefined();
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" };
    expect(tracingOptionsFromEnv({ ...endpoint, OTEL_SDK_DISABLED: "true" }, "g")).toBeUndefined();
    expect(
      tracingOptionsFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }, "g"),
    ).toBeUndefined();
  });

  it("turns on with an endpoint or a named exporter; protobuf unless JSON is asked for", () => {
    expect(
      tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c/v1/traces" }, "a"),
    ).toEqual({ exporter: "otlp", protocol: "http/protobuf", defaultServiceName: "a" });
    expect(tracingOptionsFromEnv({ OTEL_TRACES_EXPORTER: "console" }, "a")?.exporter).toBe(
      "console",
    );
    expect(
      tracingOptionsFromEnv(
        {
          OTEL_TRACES_EXPORTER: "otlp",
          OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
          OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
        },
        "a",
      )?.protocol,
    ).toBe("http/json");
  });

  it("refuses values it does not understand, naming the variable", () => {
    expect(() => tracingOptionsFromEnv({ OTEL_TRACES_EXPORTER: "zipkin" }, "a")).toThrow(
      /OTEL_TRACES_EXPORTER must be otlp, console or none \(got "zipkin"\)/,
    );
    expect(() => tracingOptionsFromEnv({ OTEL_TRACES_EXPORTER: "otlp,console" }, "a")).toThrow(
      /OTEL_TRACES_EXPORTER/,
    );
    expect(() =>
      tracingOptionsFromEnv(
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
        "a",
      ),
    ).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf or http\/json \(got "grpc"/);
  });
});
