/**
 * Small numeric and formatting helpers shared by the bench's orchestrator and its report.
 */

/** Median of `values` (mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

/** Sum of `values`. */
export function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** Geometric mean of positive `values`; NaN for none. */
export function geomean(values: readonly number[]): number {
  const usable = values.filter((value) => value > 0 && Number.isFinite(value));
  if (usable.length === 0) return Number.NaN;
  return Math.exp(sum(usable.map(Math.log)) / usable.length);
}

/** A number with `digits` decimals, or an en dash when it is not finite. */
export function fixed(value: number | undefined, digits = 2): string {
  return value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

/** A ratio as `1.23×`. */
export function times(value: number | undefined, digits = 2): string {
  return value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(digits)}×`;
}

/** Bytes as B, KB or MB (powers of 1000, as file sizes are usually quoted). */
export function bytes(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  if (value < 1000) return `${value} B`;
  if (value < 1_000_000) return `${(value / 1000).toFixed(1)} KB`;
  return `${(value / 1_000_000).toFixed(2)} MB`;
}

/** A signed percentage, e.g. `+12.3%`. */
export function percent(fraction: number | undefined, digits = 1): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return '–';
  const value = fraction * 100;
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}%`;
}

/** A Markdown table; `align` per column: 'l' (default) or 'r'. Pipes in cells are escaped. */
export function markdownTable(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  align?: readonly ('l' | 'r')[],
): string {
  const escapeCell = (cell: string): string => cell.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const line = (cells: readonly string[]): string => `| ${cells.map(escapeCell).join(' | ')} |`;
  const rule = headers.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  return [line(headers), `|${rule.join('|')}|`, ...rows.map(line)].join('\n');
}

/** Seconds from milliseconds. */
export const seconds = (ms: number): number => ms / 1000;

/** MiB from KiB (what `process.resourceUsage().maxRSS` reports on Linux). */
export const mibFromKib = (kib: number): number => kib / 1024;
