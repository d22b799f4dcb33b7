import type { SfmlPause, SfmlScript } from "./sfml-types.js";

/**
 * Prints a script as canonical SFML v1 (the form `parseSfml` reads strictly): the header, the
 * cast block, then each scene with 2-space speaker headers and scene pauses and 4-space bullets and
 * block pauses; pauses with two decimals when that is exact.
 */
export function printSfml(script: SfmlScript): string {
  const out = ["# SFML v1", "", "cast:"];
  for (const member of script.cast) out.push(`  ${member.name}: ${member.voiceId}`);
  for (const scene of script.scenes) {
    out.push("");
    out.push(`scene ${scene.id}${scene.title === undefined ? "" : ` "${scene.title}"`}:`);
    for (const item of scene.items) {
      if (item.kind === "pause") {
        out.push(`  ${pauseLine(item)}`);
        continue;
      }
      out.push(`  ${item.name}:`);
      for (const entry of item.items) {
        if (entry.kind === "pause") out.push(`    ${pauseLine(entry)}`);
        else
          out.push(`    - ${entry.delivery ? `{delivery=${entry.delivery}} ` : ""}${entry.text}`);
      }
    }
  }
  return `${out.join("\n")}\n`;
}

function pauseLine(pause: SfmlPause): string {
  const fixed = pause.seconds.toFixed(2);
  return `PAUSE: ${Number(fixed) === pause.seconds ? fixed : String(pause.seconds)}`;
}
