/*
 * The glob patterns of lint-paths and lint-exclude, relative to the working directory:
 *   *  any characters but /      ?  one character but /      [a-z] [!a-z]  a character class
 *   ** as a whole path segment: any number of directories    {a,b}  either alternative
 *   A pattern without / matches a name at any depth (like .gitignore), e.g. `*.inc`.
 *   A pattern that matches a directory covers everything below it, e.g. `legacy` or `legacy/**`.
 */

/** The regular expression of one glob pattern (see the semantics above), anchored at both ends. */
export function globToRegExp(pattern: string): RegExp {
  let p = pattern.trim().replace(/^(\.\/)+/, '');
  p = p.replace(/\/+$/, '');
  if (!p.includes('/')) p = `**/${p}`;
  return new RegExp(`^${globSource(p)}$`);
}

function globSource(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*') {
      let end = i + 1;
      while (p[end] === '*') end++;
      const wholeSegment = end - i >= 2 && (i === 0 || p[i - 1] === '/') && (end === p.length || p[end] === '/');
      if (!wholeSegment) {
        out += '[^/]*';
      } else if (end === p.length) {
        out += '.*';
      } else {
        out += '(?:.*/)?';
        end += 1; // the slash is part of the optional group
      }
      i = end - 1;
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = p.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = p.slice(i + 1, close);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      out += `(?!/)[${negated ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = close;
    } else if (c === '{') {
      const close = matchingBrace(p, i);
      if (close < 0) {
        out += '\\{';
        continue;
      }
      out += `(?:${splitTopLevel(p.slice(i + 1, close))
        .map(globSource)
        .join('|')})`;
      i = close;
    } else {
      out += c.replace(/[.+^$()|\\}\]]/g, '\\$&');
    }
  }
  return out;
}

function matchingBrace(p: string, open: number): number {
  let depth = 0;
  for (let i = open; i < p.length; i++) {
    if (p[i] === '{') depth++;
    else if (p[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '{') depth++;
    else if (body[i] === '}') depth--;
    else if (body[i] === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

/** A matcher for a list of patterns: true when any pattern matches the path or one of its parent directories. */
export function globMatcher(patterns: readonly string[]): (path: string) => string | undefined {
  const compiled = patterns.map((pattern) => ({ pattern, regex: globToRegExp(pattern) }));
  return (path) => {
    const segments = path.split('/');
    for (let n = segments.length; n >= 1; n--) {
      const prefix = segments.slice(0, n).join('/');
      const hit = compiled.find((c) => c.regex.test(prefix));
      if (hit) return hit.pattern;
    }
    return undefined;
  };
}

/** The directories a pattern names literally before its first wildcard: `tools/vendor/*.sh` -> `tools/vendor`. */
export function literalBase(pattern: string): string {
  const segments = pattern
    .trim()
    .replace(/^(\.\/)+/, '')
    .split('/');
  const literal: string[] = [];
  for (const segment of segments.slice(0, -1)) {
    if (/[*?[{]/.test(segment)) break;
    literal.push(segment);
  }
  return literal.join('/');
}
