/**
 * Pure: does a Python version satisfy a `requires-python` specifier set (PEP 440)? Handles
 * the operators that appear in requires-python: ==, != (with .* prefixes), <, <=, >, >=, ~=,
 * ===. Versions are compared on their release numbers only.
 */

type Release = number[];

function parseRelease(v: string): Release | undefined {
  const m = /^\s*v?(\d+(?:\.\d+)*)\s*$/.exec(v);
  return m ? m[1]!.split('.').map(Number) : undefined;
}

function cmp(a: Release, b: Release): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function prefixMatch(v: Release, prefix: Release): boolean {
  return prefix.every((p, i) => (v[i] ?? 0) === p);
}

/** Returns undefined when `version` satisfies `spec`, else the clause it fails (or a parse error). */
export function checkRequiresPython(spec: string, version: string): string | undefined {
  const v = parseRelease(version);
  if (!v) return `cannot read version ${version}`;
  for (const raw of spec.split(',')) {
    const clause = raw.trim();
    if (!clause) continue;
    const m = /^(~=|===|==|!=|<=|>=|<|>)\s*(.+)$/.exec(clause);
    if (!m) return `"${clause}" is not a version specifier`;
    const op = m[1]!;
    let target = m[2]!.trim();
    const wildcard = target.endsWith('.*');
    if (wildcard) target = target.slice(0, -2);
    const t = parseRelease(target);
    if (!t) return `"${clause}" is not a version specifier`;
    let ok: boolean;
    switch (op) {
      case '==':
      case '===':
        ok = wildcard ? prefixMatch(v, t) : cmp(v, t) === 0;
        break;
      case '!=':
        ok = wildcard ? !prefixMatch(v, t) : cmp(v, t) !== 0;
        break;
      case '<':
        ok = cmp(v, t) < 0;
        break;
      case '<=':
        ok = cmp(v, t) <= 0;
        break;
      case '>':
        ok = cmp(v, t) > 0;
        break;
      case '>=':
        ok = cmp(v, t) >= 0;
        break;
      case '~=':
        if (t.length < 2) return `"${clause}": ~= needs at least two release numbers`;
        ok = cmp(v, t) >= 0 && prefixMatch(v, t.slice(0, -1));
        break;
      default:
        return `"${clause}" is not a version specifier`;
    }
    if (!ok) return clause;
  }
  return undefined;
}
