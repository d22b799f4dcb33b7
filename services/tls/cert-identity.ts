import type { PeerCertificate } from "node:tls";

/**
 * The names a certificate vouches for: its subject common name and every DNS and URI subject
 * alternative name, in that order, without duplicates. For a URI SAN
 * (`spiffe://example.org/agent/gpu-1`) its last path segment counts too, so workload identities
 * can carry the agent id.
 */
export function certificateIdentities(cert: PeerCertificate): string[] {
  const names = new Set<string>();
  const cn = cert.subject?.CN;
  // Node gives an array when the subject repeats CN.
  for (const value of Array.isArray(cn) ? cn : cn ? [cn] : []) names.add(String(value));
  for (const entry of splitAltNames(cert.subjectaltname ?? "")) {
    const colon = entry.indexOf(":");
    const kind = entry.slice(0, colon);
    const value = entry.slice(colon + 1);
    if (kind === "DNS") names.add(value);
    if (kind === "URI") {
      names.add(value);
      const last = value.split("/").pop();
      if (last) names.add(last);
    }
  }
  return [...names];
}

/**
 * Splits Node's `subjectaltname` text (`DNS:a, URI:b`); values with a comma or colon are quoted
 * by Node as JSON strings, so those are decoded.
 */
function splitAltNames(text: string): string[] {
  const entries: string[] = [];
  const pattern = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const match of text.matchAll(pattern)) {
    const kind = match[1] ?? "";
    let value = match[2] ?? "";
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    entries.push(`${kind}:${value}`);
  }
  return entries;
}
