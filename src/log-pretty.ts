// LOG_FORMAT=pretty: pino's JSON lines, already censored by src/logger.ts, turned into one plain line each for a
// person at a terminal: `12:34:56.789 INFO  latchkey is ready  issuer=http://localhost:3000 database=pglite`.
// Written here rather than taken from pino-pretty: a few lines, no worker thread, nothing more to install.

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every line has, shown in the line's head or not at all. */
const HEAD = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function flatten(prefix: string, value: unknown, out: string[]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'stack') continue; // printed under the line
      flatten(prefix ? `${prefix}.${k}` : k, v, out);
    }
    return;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  out.push(`${prefix}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`);
}

function clock(time: unknown): string {
  const date = new Date(typeof time === 'number' ? time : Date.now());
  return date.toISOString().slice(11, 23);
}

/** One pino JSON line (with or without its newline) as a plain line; a line that is not JSON is kept as it is. */
export function formatPrettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const fields: string[] = [];
  const stacks: string[] = [];
  for (const [k, v] of Object.entries(entry)) {
    if (HEAD.has(k)) continue;
    flatten(k, v, fields);
    const stack = (v as { stack?: unknown } | null)?.stack;
    if (typeof stack === 'string') stacks.push(stack);
  }
  const level = LEVELS[entry.level as number] ?? String(entry.level);
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const head = `${clock(entry.time)} ${level} ${msg}`;
  const line = fields.length > 0 ? `${head}  ${fields.join(' ')}` : head;
  const indented = stacks.map((s) => s.replace(/^/gm, '    '));
  return `${[line, ...indented].join('\n')}\n`;
}

/** A pino destination writing pretty lines to `out`. */
export function prettyDestination(out: NodeJS.WritableStream): { write(chunk: string): void } {
  return {
    write(chunk: string) {
      out.write(formatPrettyLine(chunk));
    },
  };
}
