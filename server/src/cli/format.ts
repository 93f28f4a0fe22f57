// Human output of the CLI: aligned tables and short values.
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

export function shortHash(h: string | null | undefined): string {
  return h ? h.slice(0, 12) : '-';
}

export function kib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '-' : `${(bytes / 1024).toFixed(1)}K`;
}

export function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`;
}

export function num(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? '-' : Number(x.toFixed(digits)).toString();
}

/** key: value lines for one record, nested objects as compact JSON. */
export function record(obj: Record<string, unknown>): string {
  const w = Math.max(...Object.keys(obj).map((k) => k.length));
  return Object.entries(obj)
    .map(([k, v]) => `${k.padEnd(w)}  ${v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n');
}
