import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// voxgate is Apache-2.0: no package under the GPL or AGPL may sit in the closure that `npm ci
// --omit=dev` installs. The one exception is espeak-ng, the optional built-in CPU engine (a WASM
// build of a GPL program, loaded only when that engine runs; the gateway works without it).
// LGPL packages are fine. package-lock.json names every installed package with its licence and
// marks the development-only ones, so the production closure is every entry without `dev`.

const root = fileURLToPath(new URL("..", import.meta.url));
const allowedCopyleft = new Set(["espeak-ng"]);

interface LockEntry {
  license?: string | { type?: string };
  dev?: boolean;
  optional?: boolean;
}

/** Whether an SPDX expression (or an old free-text licence) names the GPL or AGPL, not the LGPL. */
function isStrongCopyleft(licence: string): boolean {
  const withoutLesser = licence.replace(/\bLGPL[-\w.+]*/gi, "").replace(/Lesser/gi, "");
  return /\b(A?GPL|GNU)\b/i.test(withoutLesser);
}

describe("production dependency licences", () => {
  it("recognizes the licence spellings it must refuse and allow", () => {
    expect(isStrongCopyleft("GPL-3.0-or-later")).toBe(true);
    expect(isStrongCopyleft("AGPL-3.0")).toBe(true);
    expect(isStrongCopyleft("GNU v3")).toBe(true);
    expect(isStrongCopyleft("(MIT OR GPL-2.0)")).toBe(true);
    expect(isStrongCopyleft("LGPL-3.0")).toBe(false);
    expect(isStrongCopyleft("Apache-2.0")).toBe(false);
    expect(isStrongCopyleft("MIT")).toBe(false);
  });

  it("has no GPL or AGPL package outside the optional espeak-ng engine", async () => {
    const lock = JSON.parse(await readFile(`${root}/package-lock.json`, "utf8")) as {
      packages: Record<string, LockEntry>;
    };
    const production = Object.entries(lock.packages).filter(([path, entry]) => path && !entry.dev);
    expect(production.length).toBeGreaterThan(50);
    const offending = production.flatMap(([path, entry]) => {
      const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
      const licence =
        typeof entry.license === "string" ? entry.license : (entry.license?.type ?? "");
      return isStrongCopyleft(licence) && !allowedCopyleft.has(name)
        ? [`${name} (${licence})`]
        : [];
    });
    expect(offending).toEqual([]);
  });
});
