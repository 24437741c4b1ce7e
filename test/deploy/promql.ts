// The metric names a PromQL expression reads, found without a PromQL engine:
// strings, label matchers, ranges and grouping clauses are removed, then every
// identifier that is not a function, an aggregation or a keyword is a metric.
// Also a bracket check, so a rule that Prometheus would refuse to parse fails here.

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

export function metricNames(expression: string): string[] {
  const stripped = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(match.index + match[0].length);
    if (/^\s*\(/.test(after)) continue;
    // A number's exponent (1e3) or a duration after offset is not a name.
    if (match.index > 0 && /[0-9.]/.test(stripped[match.index - 1]!)) continue;
    if (KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** Throws unless (), [] and {} nest properly outside strings. */
export function checkBrackets(expression: string): void {
  const text = expression.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const open: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const character of text) {
    if ('([{'.includes(character)) open.push(character);
    else if (character in pairs && open.pop() !== pairs[character]) throw new Error(`unbalanced ${character} in ${expression}`);
  }
  if (open.length > 0) throw new Error(`unclosed ${open.join('')} in ${expression}`);
}
