import type { EngineVoice } from "../tts-engine.js";

const OTHER_LANGUAGE = /\(([^\s()]+)\s+\d+\)/g;

/**
 * Turns the table printed by `espeak-ng --voices` into engine voices, in table order.
 *
 * Columns are `Pty Language Age/Gender VoiceName File Other-Languages`; they are split on
 * whitespace rather than by position because long language tags overflow their column, and
 * espeak-ng writes spaces inside names as `_`. The id is the language tag (what `-v` takes, e.g.
 * `en-us`); when two voices share one (`yue`), the later gets its file name
 * (`yue-Latn-jyutping`), which `-v` accepts too. Lines that do not parse are skipped.
 */
export function parseEspeakVoiceTable(lines: readonly string[]): EngineVoice[] {
  const voices: EngineVoice[] = [];
  const taken = new Set<string>();
  for (const line of lines) {
    const [priority, language, ageGender, voiceName, file, ...rest] = line.trim().split(/\s+/);
    if (
      priority === undefined ||
      !/^\d+$/.test(priority) ||
      language === undefined ||
      ageGender === undefined ||
      voiceName === undefined ||
      file === undefined
    ) {
      continue;
    }
    const fileName = file.slice(file.lastIndexOf("/") + 1);
    const id = [language, fileName].find((candidate) => !taken.has(candidate.toLowerCase()));
    if (id === undefined) {
      continue;
    }
    taken.add(id.toLowerCase());
    const languages = [language];
    for (const match of rest.join(" ").matchAll(OTHER_LANGUAGE)) {
      const other = match[1];
      if (other !== undefined && !languages.includes(other)) {
        languages.push(other);
      }
    }
    voices.push({
      id,
      name: voiceName.replaceAll("_", " ").trim(),
      languages,
      gender: genderOf(ageGender),
    });
  }
  return voices;
}

function genderOf(ageGender: string): string {
  switch (ageGender.slice(ageGender.indexOf("/") + 1).toUpperCase()) {
    case "M":
      return "male";
    case "F":
      return "female";
    default:
      return "";
  }
}
