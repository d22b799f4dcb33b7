// Types of the parse-prometheus-text-format package (it ships none), as its README describes them.
declare module "parse-prometheus-text-format" {
  /** One sample: labels and value; histograms and summaries carry buckets or quantiles. */
  interface Sample {
    labels?: Record<string, string>;
    value?: string;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  /** One metric family. */
  interface MetricFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    metrics: Sample[];
  }
  /** Parses Prometheus text exposition format into metric families. */
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
