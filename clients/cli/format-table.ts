/** Plain-text tables for CLI output: left-aligned columns, one header row. */

/** Options of {@link formatTable}. */
export interface FormatTableOptions {
  /**
   * Widest a cell may be, in characters; longer cells are cut and end in "…".
   * @default 60
   */
  maxCellWidth?: number | undefined;
  /**
   * Spaces between columns.
   * @default 2
   */
  gap?: number | undefined;
}

/**
 * Formats `rows` under `headers` as left-aligned columns, one line per row, each line ending in a
 * newline and without trailing spaces. Line breaks and tabs inside cells become spaces; missing
 * cells are empty. Widths count code points, so East Asian wide characters may misalign.
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  options: FormatTableOptions = {},
): string {
  const maxCellWidth = options.maxCellWidth ?? 60;
  const gap = " ".repeat(options.gap ?? 2);
  const lines = [headers, ...rows].map((row) =>
    headers.map((_, column) => fitCell(row[column] ?? "", maxCellWidth)),
  );
  const widths = headers.map((_, column) =>
    Math.max(...lines.map((line) => width(line[column] ?? ""))),
  );
  return lines
    .map((line) =>
      line
        .map((cell, column) => cell + " ".repeat((widths[column] ?? 0) - width(cell)))
        .join(gap)
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

function fitCell(cell: string, maxWidth: number): string {
  const flat = cell.replace(/\s/g, " ");
  const chars = [...flat];
  if (chars.length <= maxWidth) return flat;
  return `${chars.slice(0, Math.max(0, maxWidth - 1)).join("")}…`;
}

function width(text: string): number {
  return [...text].length;
}

/**
 * Returns the label of a generated protobuf enum value for tables: its name, lowercase, with
 * dashes (`BackendKind.IN_PROCESS` → `in-process`). Values the enum does not know (a newer
 * server) print as their number.
 */
export function enumLabel(enumObject: Readonly<Record<number, string>>, value: number): string {
  const name = enumObject[value];
  return name === undefined ? String(value) : name.toLowerCase().replaceAll("_", "-");
}
