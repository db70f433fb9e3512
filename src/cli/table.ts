// Plain-text tables for list commands: a header row, columns padded to their widest cell.

/**
 * Control characters become `?`: stored text (names from sign-up or an upstream provider) must not be able to
 * move the cursor or rewrite an operator's terminal.
 */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [headers, ...rows].map((row) => row.map(printable));
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => [...(row[i] ?? '')].length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - [...cell].length)))
        .join('  '),
    )
    .join('\n');
}

/** 2026-01-31 12:34:56Z — a UTC time to the second. */
export function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** A UTC time as JSON output carries it (ISO 8601), or null. */
export function isoTime(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}

/**
 * A list command's result: `items` (plain objects) are the JSON array; the text is a table of `columns`, each a
 * header and the cell it shows for an item, or `empty` when there are none.
 */
export function listResult<T>(
  items: readonly T[],
  columns: readonly (readonly [header: string, cell: (item: T) => string])[],
  empty: string,
): { json: readonly T[]; text: string } {
  if (items.length === 0) return { json: items, text: empty };
  return {
    json: items,
    text: formatTable(
      columns.map(([header]) => header),
      items.map((item) => columns.map(([, cell]) => cell(item))),
    ),
  };
}
