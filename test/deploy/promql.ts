/**
 * The metric names a PromQL expression (or a Grafana `label_values(...)` query) reads. Not a full
 * parser: it removes what is never a metric name (strings, label matchers, ranges, label lists of
 * `by`/`on`/..., function calls, keywords, numbers, Grafana variables), and what is left is a name.
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2'])

export function metricNames(query: string): string[] {
  let expr = query.trim()
  // Grafana's label_values(selector, label) reads the selector's metric; label_values(label), none.
  if (expr.startsWith('label_values(')) {
    expr = /^label_values\(\s*(.+),\s*[a-zA-Z_]\w*\s*\)$/s.exec(expr)?.[1] ?? ''
  }
  expr = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/[a-zA-Z_][\w]*\s*\(/g, '(')
  const names = new Set<string>()
  for (const m of expr.matchAll(/(?<![\w.$])[a-zA-Z_:][\w:]*/g)) {
    if (!KEYWORDS.has(m[0].toLowerCase())) names.add(m[0])
  }
  return [...names].sort()
}

/** Sample names in a Prometheus text exposition (histograms as their _bucket, _sum and _count). */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>()
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line)
    if (m) names.add(m[1]!)
  }
  return names
}
