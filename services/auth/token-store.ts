import { timingSafeEqual } from "node:crypto";
import type { TokenLimits } from "../limits/token-limits.js";
import type { Scope } from "./scopes.js";
import { hashToken } from "./token-codec.js";

/**
 * A token the gateway accepts, as written in the config file: only its hash is stored. Its
 * optional limits (`maxConcurrentCalls`, `maxRequestsPerMinute`, `maxCharsPerDay`) hold over every
 * gateway replica.
 */
export interface TokenEntry extends TokenLimits {
  /** Name for logs and admin views, e.g. `storyforge-cloud`. */
  name: string;
  /** Lowercase hex sha256 of the token. */
  sha256: string;
  /** Scopes the token grants. */
  scopes: readonly Scope[];
  /**
   * Tenant whose cloned voices, prompts and jobs the token works with; tokens naming the same
   * tenant share them. @default the token's `name`
   */
  tenant?: string | undefined;
  /**
   * Agent tokens: least routing priority an agent with this token may claim (lower is
   * preferred), within the gateway-wide range. @default the gateway's `agentMinPriority`
   */
  agentMinPriority?: number | undefined;
  /** Agent tokens: greatest routing priority such an agent may claim. @default the gateway's `agentMaxPriority` */
  agentMaxPriority?: number | undefined;
}

/** Routing priorities an agent token's agents may claim; an unset bound is the gateway's. */
export interface AgentPriorityRange {
  /** Least priority, or undefined for the gateway-wide one. */
  min: number | undefined;
  /** Greatest priority, or undefined for the gateway-wide one. */
  max: number | undefined;
}

/** Who made a call: the name and scopes of the token presented. */
export interface Principal {
  /** Token name from the config. */
  name: string;
  /** Scopes granted. */
  scopes: ReadonlySet<Scope>;
  /** Tenant that owns what the caller makes (the entry's `tenant`, else its name). */
  tenant: string;
  /** Agent tokens: the priorities its agents may claim (narrows the gateway-wide range). */
  agentPriority?: AgentPriorityRange | undefined;
}

/** Verifies presented tokens against configured hashes. */
export interface TokenStore {
  /**
   * Returns the principal of `presented`, or undefined when it matches no configured token.
   * Runs in time independent of which entry (if any) matches.
   */
  verify(presented: string | undefined): Principal | undefined;
  /** Number of configured tokens. */
  readonly size: number;
  /**
   * Replaces every configured token at once (a reload): the next `verify` uses the new set, so a
   * removed token is refused on its next call.
   *
   * @throws Error (keeping the current tokens) when an entry is invalid or names repeat.
   */
  replace(entries: readonly TokenEntry[]): void;
}

/**
 * Creates a token store. Tokens are random 256-bit values, so a plain sha256 is a sound stored
 * form (no dictionary to guess from); comparison is constant-time over every entry.
 *
 * @throws Error when an entry's hash is not 64 lowercase hex characters or names repeat.
 */
export function createTokenStore(entries: readonly TokenEntry[]): TokenStore {
  let prepared = prepare(entries);
  return {
    get size() {
      return prepared.length;
    },
    replace(next) {
      prepared = prepare(next);
    },
    verify(presented) {
      if (presented === undefined || presented.length === 0 || presented.length > 512) {
        return undefined;
      }
      const candidate = Buffer.from(hashToken(presented), "hex");
      let found: Principal | undefined;
      // Compare against every entry, never stopping early, so timing reveals nothing.
      for (const entry of prepared) {
        if (timingSafeEqual(entry.hash, candidate)) found = entry.principal;
      }
      return found;
    },
  };
}

/** Checks entries and turns them into hashes and principals. */
function prepare(entries: readonly TokenEntry[]): { hash: Buffer; principal: Principal }[] {
  const names = new Set<string>();
  return entries.map((entry) => {
    if (!/^[0-9a-f]{64}$/.test(entry.sha256)) {
      throw new Error(`token "${entry.name}": sha256 must be 64 lowercase hex characters`);
    }
    if (names.has(entry.name)) throw new Error(`token name "${entry.name}" is used twice`);
    names.add(entry.name);
    return {
      hash: Buffer.from(entry.sha256, "hex"),
      principal: {
        name: entry.name,
        scopes: new Set(entry.scopes),
        tenant: entry.tenant || entry.name,
        agentPriority: { min: entry.agentMinPriority, max: entry.agentMaxPriority },
      } satisfies Principal,
    };
  });
}
