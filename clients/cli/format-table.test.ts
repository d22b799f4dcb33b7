import { describe, expect, it } from "vitest";
import { formatTable } from "./format-table.js";

describe("formatTable", () => {
  it("aligns columns to the widest cell and trims trailing spaces", () => {
    const out = formatTable(
      ["ID", "NAME", "ENGINE"],
      [
        ["en-us", "English (US)", "espeak-ng"],
        ["de", "German", ""],
      ],
    );
    expect(out).toBe(
      ["ID     NAME          ENGINE", "en-us  English (US)  espeak-ng", "de     German", ""].join(
        "\n",
      ),
    );
  });

  it("prints only the header for no rows", () => {
    expect(formatTable(["A", "B"], [])).toBe("A  B\n");
  });

  it("cuts long cells with an ellipsis, flattens line breaks and fills missing cells", () => {
    const out = formatTable(["K", "ERROR"], [["a", "line one\nline two"], ["b"]], {
      maxCellWidth: 8,
      gap: 1,
    });
    expect(out).toBe(["K ERROR", "a line on…", "b", ""].join("\n"));
  });

  it("measures code points, not UTF-16 units", () => {
    const out = formatTable(["V", "X"], [["🎙️a", "1"]]);
    const [header, row] = out.split("\n");
    expect(header).toBe("V    X");
    expect(row).toBe("🎙️a  1");
  });
});
