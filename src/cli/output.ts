// What a command prints: JSON (one document, for scripts and jq) or a table
// for people. Commands hand over plain JSON values; this file decides the shape.

export type OutputFormat = 'table' | 'json';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function render(value: unknown, format: OutputFormat): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  if (Array.isArray(value)) return renderRows(value as Record<string, Json>[]);
  return renderFields(value as Record<string, Json>);
}

function cell(value: Json | undefined): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map((entry) => cell(entry)).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** One field per line: `name  value`. */
function renderFields(record: Record<string, Json>): string {
  const entries = Object.entries(record);
  const width = Math.max(0, ...entries.map(([name]) => name.length));
  return entries.map(([name, value]) => `${name.padEnd(width)}  ${cell(value)}\n`).join('');
}

/** Columns from the union of the rows' fields, in first-seen order. */
function renderRows(rows: Record<string, Json>[]): string {
  if (rows.length === 0) return '(none)\n';
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cells = rows.map((row) => columns.map((column) => cell(row[column])));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((row) => row[index]!.length)));
  const line = (values: string[]) => `${values.map((value, index) => value.padEnd(widths[index]!)).join('  ').trimEnd()}\n`;
  return line(columns.map((column) => column.toUpperCase())) + cells.map(line).join('');
}
