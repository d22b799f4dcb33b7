import { Code, ConnectError } from "@connectrpc/connect";

/** Fixed limits on named prompts (named in their error messages). */
export const kNamedPromptLimits = {
  /** Longest name, in characters. */
  nameChars: 128,
  /** Most tags. */
  tags: 32,
  /** Longest tag, in characters. */
  tagChars: 64,
  /** Most labels. */
  labels: 16,
  /** Longest label value, in characters. */
  labelValueChars: 1000,
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LABEL_KEY = /^[a-z][a-z0-9_]{0,31}$/;

const invalid = (message: string) => new ConnectError(message, Code.InvalidArgument);

/**
 * Checks a prompt name: 1 to 128 letters, digits and `._-`, starting with a letter or digit (it
 * appears in URL paths and `{name}.pt` object keys, so no slash, space or dot-dot start).
 * @throws ConnectError INVALID_ARGUMENT naming the rule.
 */
export function checkPromptName(name: string): void {
  if (!name) throw invalid("name is required");
  if (name.length > kNamedPromptLimits.nameChars) {
    throw invalid(
      `name is ${name.length} characters; the limit is ${kNamedPromptLimits.nameChars}`,
    );
  }
  if (!NAME.test(name)) {
    throw invalid(
      `name "${name.slice(0, 80)}" may hold letters, digits and ._- only, starting with a letter or digit`,
    );
  }
}

/**
 * Checks tags and labels; returns the tags without duplicates, in their first order.
 * @throws ConnectError INVALID_ARGUMENT naming the limit.
 */
export function checkTagsAndLabels(
  tags: readonly string[],
  labels: Readonly<Record<string, string>>,
): string[] {
  const L = kNamedPromptLimits;
  const unique = [...new Set(tags)];
  if (unique.length > L.tags) throw invalid(`${unique.length} tags; the limit is ${L.tags}`);
  for (const tag of unique) {
    if (tag.length === 0 || tag.length > L.tagChars || /[,\s]/.test(tag)) {
      throw invalid(
        `tag "${tag.slice(0, 70)}" must be 1 to ${L.tagChars} characters without commas or spaces`,
      );
    }
  }
  const entries = Object.entries(labels);
  if (entries.length > L.labels)
    throw invalid(`${entries.length} labels; the limit is ${L.labels}`);
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key)) {
      throw invalid(`label key "${key.slice(0, 40)}" must match [a-z][a-z0-9_]{0,31}`);
    }
    if (value.length > L.labelValueChars) {
      throw invalid(
        `label "${key}" is ${value.length} characters; the limit is ${L.labelValueChars}`,
      );
    }
  }
  return unique;
}
