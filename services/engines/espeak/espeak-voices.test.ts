import { describe, expect, it } from "vitest";
import { parseEspeakVoiceTable } from "./espeak-voices.js";

// Lines as printed by `espeak-ng --voices` (npm espeak-ng 1.0.2, eSpeak NG 1.52-dev).
const TABLE = [
  "Pty Language       Age/Gender VoiceName          File                 Other Languages",
  " 5  af              --/M      Afrikaans          gmw/af               ",
  " 5  chr-US-Qaaa-x-west --/M      Cherokee_          iro/chr              ",
  " 5  cmn             --/M      Chinese_(Mandarin,_latin_as_English) sit/cmn              (zh-cmn 5)(zh 5)",
  " 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)",
  " 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)",
  " 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)",
  " 5  yue             --/M      Chinese_(Cantonese,_latin_as_Jyutping) sit/yue-Latn-jyutping (zh-yue 5)(zh 8)",
  " 5  xx              --/F      Test_voice         test/xx              ",
  "",
  "garbage line",
];

describe("parseEspeakVoiceTable", () => {
  it("reads ids, names, languages and genders", () => {
    expect(parseEspeakVoiceTable(TABLE)).toEqual([
      { id: "af", name: "Afrikaans", languages: ["af"], gender: "male" },
      {
        id: "chr-US-Qaaa-x-west",
        name: "Cherokee",
        languages: ["chr-US-Qaaa-x-west"],
        gender: "male",
      },
      {
        id: "cmn",
        name: "Chinese (Mandarin, latin as English)",
        languages: ["cmn", "zh-cmn", "zh"],
        gender: "male",
      },
      { id: "en-gb", name: "English (Great Britain)", languages: ["en-gb", "en"], gender: "male" },
      { id: "en-us", name: "English (America)", languages: ["en-us", "en"], gender: "male" },
      {
        id: "yue",
        name: "Chinese (Cantonese)",
        languages: ["yue", "zh-yue", "zh"],
        gender: "male",
      },
      {
        id: "yue-Latn-jyutping",
        name: "Chinese (Cantonese, latin as Jyutping)",
        languages: ["yue", "zh-yue", "zh"],
        gender: "male",
      },
      { id: "xx", name: "Test voice", languages: ["xx"], gender: "female" },
    ]);
  });

  it("gives an empty gender when espeak-ng gives none", () => {
    expect(parseEspeakVoiceTable([" 5  qq  --/-  Q  x/qq"])).toEqual([
      { id: "qq", name: "Q", languages: ["qq"], gender: "" },
    ]);
  });

  it("skips a voice whose language and file name are both taken", () => {
    const voices = parseEspeakVoiceTable([" 5  de --/M German gmw/de", " 5  de --/M German2 x/de"]);
    expect(voices.map((voice) => voice.id)).toEqual(["de"]);
  });
});
