import { lookup as dnsLookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";

/** Where job webhooks may go; built from the webhook settings. */
export interface WebhookPolicy {
  /**
   * Host names (or IP literals) webhooks may call, lowercase; `*.example.com` matches every
   * subdomain of example.com but not example.com itself. Empty: webhooks are off
   * (VOXGATE_WEBHOOK_ALLOWED_HOSTS).
   */
  allowedHosts: readonly string[];
  /**
   * Whether hosts resolving to private, loopback, link-local (cloud metadata), CGNAT or other
   * non-public addresses may be called (VOXGATE_WEBHOOK_ALLOW_PRIVATE).
   */
  allowPrivate: boolean;
  /** Longest URL, in characters (VOXGATE_MAX_WEBHOOK_URL_CHARS). */
  maxUrlChars: number;
}

/** One resolved address of a webhook host. */
export interface WebhookAddress {
  /** IP address text. */
  address: string;
  /** 4 or 6. */
  family: number;
}

/** Resolves a host name to all its addresses (`dns.lookup` with `all: true` by default). */
export type HostResolver = (host: string) => Promise<WebhookAddress[]>;

/** Raised for a webhook URL the policy refuses; the message names the rule and its setting. */
export class WebhookUrlError extends Error {
  override readonly name = "WebhookUrlError";
}

/** Returns whether `err` is a {@link WebhookUrlError}. */
export function isWebhookUrlError(err: unknown): err is WebhookUrlError {
  return err instanceof WebhookUrlError;
}

const defaultResolver: HostResolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/** The URL's host, lowercase, without the brackets of an IPv6 literal. */
export function bareHost(url: URL): string {
  // IPv6 literals keep their brackets in URL.hostname.
  return url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
}

/**
 * Whether `host` is on `allowed`: exact names, or `*.example.com` for every subdomain (not the
 * domain itself).
 */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) =>
    entry.startsWith("*.")
      ? host.endsWith(entry.slice(1)) && host.length > entry.length - 1
      : host === entry,
  );
}

/**
 * Checks a webhook URL without touching the network: http or https, no credentials, within the
 * length limit, and a host on the allowlist.
 *
 * @throws WebhookUrlError naming the broken rule and the setting behind it.
 */
export function checkWebhookUrl(raw: string, policy: WebhookPolicy): URL {
  if (policy.allowedHosts.length === 0) {
    throw new WebhookUrlError(
      "webhooks are off on this gateway: VOXGATE_WEBHOOK_ALLOWED_HOSTS lists no host",
    );
  }
  if (raw.length > policy.maxUrlChars) {
    throw new WebhookUrlError(
      `webhook_url has ${raw.length} characters; the limit is ${policy.maxUrlChars} (VOXGATE_MAX_WEBHOOK_URL_CHARS)`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError("webhook_url is not an absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new WebhookUrlError(`webhook_url must be http or https, not ${url.protocol}`);
  }
  if (url.username || url.password) {
    throw new WebhookUrlError("webhook_url must not carry credentials");
  }
  const host = bareHost(url);
  if (!hostAllowed(host, policy.allowedHosts)) {
    throw new WebhookUrlError(`webhook host ${host} is not in VOXGATE_WEBHOOK_ALLOWED_HOSTS`);
  }
  return url;
}

/** Returns why `address` may not be called (its ipaddr.js range), or undefined when it is public. */
export function nonPublicRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return "invalid";
  const range = ipaddr.process(address).range();
  return range === "unicast" ? undefined : range;
}

/** How {@link resolvePublicAddresses} names what it checks in its errors. */
export interface AddressPolicy {
  /** Whether non-public addresses may be connected to. */
  allowPrivate: boolean;
  /** What the host is, for messages: "webhook host", "media host". */
  subject: string;
  /** The setting that allows non-public addresses, named in the refusal. */
  allowPrivateSetting: string;
}

/**
 * Resolves `host` (a name or an IP literal) and checks every address it resolves to: unless
 * private addresses are allowed, one non-public address refuses the host (a name pointing at both
 * a public and an internal address is refused). Callers connect to the returned addresses only, so
 * a DNS answer changing between this check and the request cannot redirect it (DNS rebinding).
 * Shared by webhooks and the StoryForge media fetcher.
 *
 * @throws WebhookUrlError when the host does not resolve or resolves to a refused address.
 */
export async function resolvePublicAddresses(
  host: string,
  policy: AddressPolicy,
  resolve: HostResolver = defaultResolver,
): Promise<WebhookAddress[]> {
  let addresses: WebhookAddress[];
  if (ipaddr.isValid(host)) {
    addresses = [{ address: host, family: host.includes(":") ? 6 : 4 }];
  } else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      throw new WebhookUrlError(`${policy.subject} ${host} does not resolve`, { cause: err });
    }
    if (addresses.length === 0) {
      throw new WebhookUrlError(`${policy.subject} ${host} does not resolve`);
    }
  }
  if (!policy.allowPrivate) {
    for (const { address } of addresses) {
      const range = nonPublicRange(address);
      if (range) {
        throw new WebhookUrlError(
          `${policy.subject} ${host} resolves to ${address} (${range}); non-public addresses need ${policy.allowPrivateSetting}=true`,
        );
      }
    }
  }
  return addresses;
}

/**
 * Resolves the URL's host and checks every address it resolves to (see
 * {@link resolvePublicAddresses}).
 *
 * @throws WebhookUrlError when the host does not resolve or resolves to a refused address.
 */
export async function resolveWebhookHost(
  url: URL,
  policy: WebhookPolicy,
  resolve: HostResolver = defaultResolver,
): Promise<WebhookAddress[]> {
  return resolvePublicAddresses(
    bareHost(url),
    {
      allowPrivate: policy.allowPrivate,
      subject: "webhook host",
      allowPrivateSetting: "VOXGATE_WEBHOOK_ALLOW_PRIVATE",
    },
    resolve,
  );
}
