import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  realpathSync,
  statSync,
  type Dirent,
} from 'node:fs';
import { basename, dirname, extname, join, relative, sep } from 'node:path';

/*
 * Finds the shell scripts of a project the way its authors would list them: by extension and by
 * shebang, plus lint-paths, minus lint-exclude, never inside VCS metadata or vendored trees.
 *
 * Glob semantics (lint-paths and lint-exclude), relative to the working directory:
 *   *  any characters but /      ?  one character but /      [a-z] [!a-z]  a character class
 *   ** as a whole path segment: any number of directories    {a,b}  either alternative
 *   A pattern without / matches a name at any depth (like .gitignore), e.g. `*.inc`.
 *   A pattern that matches a directory covers everything below it, e.g. `legacy` or `legacy/**`.
 *   lint-exclude wins over everything, lint-paths included.
 *   Vendored trees (node_modules, vendor, ...) are searched only along a directory that a lint-paths
 *   pattern spells out literally (`vendor/tools/*.sh`), and there only for what lint-paths names.
 */

/** Extensions that mark a shell script. */
export const SCRIPT_EXTENSIONS: readonly string[] = ['.sh', '.bash', '.ksh', '.dash', '.bats'];
/** Extensions shellcheck reads the dialect from when there is no shebang (it does not for .sh: SC2148). */
export const DIALECT_EXTENSIONS: readonly string[] = ['.bash', '.ksh', '.dash', '.bats'];
/** Interpreters whose shebang shellcheck 0.9 recognises (ash and `busybox sh` are checked as dash). */
export const SHELLCHECK_INTERPRETERS: readonly string[] = [
  'sh',
  'bash',
  'dash',
  'ksh',
  'ksh88',
  'ksh93',
  'ash',
  'bats',
  'busybox sh',
  'busybox ash',
];
/** Bourne-family shells whose shebang shellcheck rejects (SC1008) but which it checks given a `shell=` directive. */
export const OTHER_BOURNE_SHELLS: readonly string[] = ['mksh', 'oksh', 'pdksh', 'posh', 'yash', 'bosh', 'busybox', 'lksh'];

/** Version-control metadata: never entered. */
export const VCS_DIRS: readonly string[] = ['.git', '.hg', '.svn', '.bzr', '_darcs', 'CVS', '.jj', '.pijul'];
/** Third-party or generated trees: not searched, but lint-paths may still name files inside them. */
export const VENDOR_DIRS: readonly string[] = [
  'node_modules',
  'bower_components',
  'vendor',
  '.venv',
  'venv',
  '.tox',
  '__pycache__',
  '.terraform',
];

/** Enough for any shebang line and the leading comment block that may hold a `shell=` directive. */
const HEAD_BYTES = 4096;
/**
 * How far we look for NUL bytes. Self-extracting archives (makeself) carry a .sh name and a
 * #!/bin/sh line in front of a tarball some 20 KiB in, so the first 8 KiB (git's rule) is not enough.
 */
const BINARY_PROBE_BYTES = 64 * 1024;

export type FoundBy = 'extension' | 'shebang' | 'lint-paths';
/** How shellcheck learns a script's dialect without --shell; undefined when it cannot (then lint-shell applies). */
export type DialectSource = 'shebang' | 'directive' | 'extension' | 'shellcheckrc';

export interface Script {
  /** Relative to the working directory, with / separators. */
  path: string;
  foundBy: FoundBy;
  dialect: DialectSource | undefined;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface Discovery {
  /** Sorted by path. */
  scripts: Script[];
  /** Files that looked like candidates but are not linted, with why; for the stage log. */
  skipped: SkippedFile[];
  /** lint-paths patterns that matched no file: most likely a typo. */
  unmatchedLintPaths: string[];
}

export interface DiscoverOptions {
  /** The working directory: patterns and returned paths are relative to it. */
  root: string;
  lintPaths: readonly string[];
  lintExclude: readonly string[];
  /** Absolute directories never entered, such as the output and cache directories when they lie inside the root. */
  ignoreDirs?: readonly string[];
}

/**
 * The interpreter a shebang line names, after unwrapping `env` (with its options and VAR=value
 * words, `-S` included) and `busybox sh`. undefined when the line is not a shebang.
 */
export function shebangInterpreter(firstLine: string): string | undefined {
  const m = /^#!\s*(\S+)(.*)$/.exec(firstLine.replace(/\r$/, ''));
  if (!m) return undefined;
  let words = [m[1], ...m[2].trim().split(/\s+/).filter(Boolean)];
  if (basename(words[0]) === 'env') {
    let i = 1;
    while (i < words.length) {
      const word = words[i];
      if (word === '-S' || word === '--split-string' || word === '-' || word === '-i' || word === '--ignore-environment') {
        i += 1;
      } else if (word.startsWith('--split-string=')) {
        words[i] = word.slice('--split-string='.length);
        break;
      } else if (/^-[a-zA-Z]*S./.test(word)) {
        // -Sbash: the split string is glued to the option.
        words[i] = word.slice(word.indexOf('S') + 1);
        break;
      } else if (word === '-u' || word === '--unset' || word === '-C' || word === '--chdir' || word === '-P') {
        i += 2;
      } else if (word.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) {
        i += 1;
      } else {
        break;
      }
    }
    if (i >= words.length) return 'env';
    words = words.slice(i);
  }
  const name = basename(words[0]);
  if (name === 'busybox' && words[1] && ['sh', 'ash'].includes(basename(words[1]))) return `busybox ${basename(words[1])}`;
  return name;
}

/** True when the leading comment block holds a `# shellcheck shell=...` directive, which applies to the whole file. */
export function hasShellDirective(head: string): boolean {
  for (const line of head.split('\n')) {
    const text = line.trim();
    if (text === '') continue;
    if (!text.startsWith('#')) return false;
    if (/^#\s*shellcheck\s+(?:\S+\s+)*shell=\S/.test(text)) return true;
  }
  return false;
}

/** A NUL byte is what git, grep and diff take as "binary"; shell scripts never contain one. */
export function looksBinary(bytes: Uint8Array): boolean {
  return bytes.includes(0);
}

export type Verdict = { lint: true; foundBy: FoundBy; dialect: DialectSource | undefined } | { lint: false; reason?: string };

/**
 * Decides whether one file is a shell script to lint. A shebang is authoritative: `build.sh` starting
 * with `#!/usr/bin/env python3` is not linted, `deploy` starting with `#!/bin/sh` is. Files named by
 * lint-paths are linted whatever they look like, except binaries. `reason` is set when the file was
 * a plausible candidate, so that the log can say why it was left out.
 */
export function classifyFile(file: { name: string; head: string; binary: boolean; listed: boolean }): Verdict {
  const extension = extname(file.name).toLowerCase();
  const scriptExtension = SCRIPT_EXTENSIONS.includes(extension);
  const interpreter = shebangInterpreter(file.head.split('\n', 1)[0]);
  const candidate = scriptExtension || file.listed || (interpreter !== undefined && isShellLike(interpreter));
  if (file.binary) return candidate ? { lint: false, reason: 'binary content (a NUL byte near the start)' } : { lint: false };
  const directive = hasShellDirective(file.head);
  const foundBy: FoundBy = file.listed ? 'lint-paths' : scriptExtension ? 'extension' : 'shebang';
  if (interpreter !== undefined) {
    if (SHELLCHECK_INTERPRETERS.includes(interpreter))
      return { lint: true, foundBy, dialect: directive ? 'directive' : 'shebang' };
    if (directive && OTHER_BOURNE_SHELLS.includes(interpreter)) return { lint: true, foundBy, dialect: 'directive' };
    if (file.listed) return { lint: true, foundBy, dialect: directive ? 'directive' : undefined };
    if (!candidate) return { lint: false };
    return {
      lint: false,
      reason: OTHER_BOURNE_SHELLS.includes(interpreter)
        ? `#! names ${interpreter}, which shellcheck checks only with a '# shellcheck shell=' directive`
        : `#! names ${interpreter}, not a shell shellcheck supports`,
    };
  }
  if (!scriptExtension && !file.listed) return { lint: false };
  const dialect: DialectSource | undefined = directive
    ? 'directive'
    : DIALECT_EXTENSIONS.includes(extension)
      ? 'extension'
      : undefined;
  return { lint: true, foundBy, dialect };
}

function isShellLike(interpreter: string): boolean {
  return SHELLCHECK_INTERPRETERS.includes(interpreter) || OTHER_BOURNE_SHELLS.includes(interpreter);
}

/** The regular expression of one glob pattern (see the semantics at the top of this file), anchored at both ends. */
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

/** The top of the git repository containing dir (the nearest ancestor with a .git entry), else undefined. */
export function findRepositoryRoot(dir: string): string | undefined {
  let current = realpathSync(dir);
  for (;;) {
    if (existsSync(join(current, '.git'))) return current;
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}

/**
 * True when the rc file shellcheck would use for scripts in dir sets `shell=`. Like shellcheck, take the
 * first .shellcheckrc or shellcheckrc from dir upwards; an rc `shell=` outranks shebangs, so lint-shell
 * must not override it.
 */
export function shellcheckrcSetsShell(dir: string, cache = new Map<string, boolean>()): boolean {
  const cached = cache.get(dir);
  if (cached !== undefined) return cached;
  let answer: boolean;
  const rc = ['.shellcheckrc', 'shellcheckrc'].map((name) => join(dir, name)).find((file) => isFile(file));
  if (rc) {
    answer = readFileSync(rc, 'utf8')
      .split('\n')
      .some((line) => /^\s*shell\s*=\s*\S/.test(line));
  } else {
    const parent = dirname(dir);
    answer = parent === dir ? false : shellcheckrcSetsShell(parent, cache);
  }
  cache.set(dir, answer);
  return answer;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

// Discovery reads the head of every file; one buffer for all of them spares the allocations.
const headBuffer = Buffer.allocUnsafe(HEAD_BYTES);

/** The first bytes of a file. The HEAD_BYTES read reuses one buffer: use the result before the next call. */
function readHead(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = bytes === HEAD_BYTES ? headBuffer : Buffer.allocUnsafe(bytes);
    const read = readSync(fd, buffer, 0, bytes, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
}

interface Candidate {
  path: string;
  real: string;
  symlink: boolean;
  verdict: Extract<Verdict, { lint: true }>;
}

/** Walks the working directory and returns the scripts to lint (see the top of this file for the rules). */
export function discoverScripts(options: DiscoverOptions): Discovery {
  const root = realpathSync(options.root);
  const isExcluded = globMatcher(options.lintExclude);
  const isListed = globMatcher(options.lintPaths);
  const listedBases = options.lintPaths.map(literalBase).filter(Boolean);
  const ignoreDirs = (options.ignoreDirs ?? []).filter(existsSync).map((d) => realpathSync(d));
  const matchedLintPaths = new Set<string>();
  const skipped: SkippedFile[] = [];
  const candidates: Candidate[] = [];

  // A vendored tree is entered only on the way to, or inside, a directory a lint-paths pattern names literally.
  const onListedRoute = (dir: string): boolean =>
    listedBases.some((base) => base === dir || base.startsWith(`${dir}/`) || dir.startsWith(`${base}/`));

  const visit = (absolute: string, path: string, vendored: boolean, symlink: boolean): void => {
    const listedBy = isListed(path);
    const isScriptName = SCRIPT_EXTENSIONS.includes(extname(path).toLowerCase());
    if (listedBy) matchedLintPaths.add(listedBy);
    if (vendored && !listedBy) return;
    let real = absolute;
    if (symlink) {
      real = realpathSync(absolute);
      if (!isInside(real, root)) {
        if (isScriptName || listedBy) skipped.push({ path, reason: 'symlink to a file outside the working directory' });
        return;
      }
    }
    let head: Buffer;
    try {
      head = readHead(absolute, HEAD_BYTES);
    } catch (error) {
      if (isScriptName || listedBy) skipped.push({ path, reason: `unreadable: ${(error as Error).message}` });
      return;
    }
    const text = head.toString('utf8');
    const mayLint = isScriptName || listedBy !== undefined || text.startsWith('#!');
    if (!mayLint) return;
    const binary = looksBinary(head.length < HEAD_BYTES ? head : readHead(absolute, BINARY_PROBE_BYTES));
    const verdict = classifyFile({ name: basename(path), head: text, binary, listed: listedBy !== undefined });
    if (!verdict.lint) {
      if (verdict.reason) skipped.push({ path, reason: verdict.reason });
      return;
    }
    candidates.push({ path, real, symlink, verdict });
  };

  const walk = (dirAbsolute: string, dirPath: string, vendored: boolean): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dirAbsolute, { withFileTypes: true });
    } catch (error) {
      skipped.push({ path: dirPath || '.', reason: `unreadable directory: ${(error as Error).message}` });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const absolute = join(dirAbsolute, entry.name);
      const path = dirPath ? `${dirPath}/${entry.name}` : entry.name;
      const excludedBy = isExcluded(path);
      if (excludedBy) {
        // Counts as a match, so that a lint-paths pattern excluded on purpose is not reported as unmatched.
        const listedBy = isListed(path);
        if (listedBy) matchedLintPaths.add(listedBy);
        continue;
      }
      if (entry.isDirectory()) {
        if (VCS_DIRS.includes(entry.name) || ignoreDirs.includes(absolute)) continue;
        const vendorDir = vendored || VENDOR_DIRS.includes(entry.name);
        if (vendorDir && !onListedRoute(path)) continue;
        walk(absolute, path, vendorDir);
      } else if (entry.isFile()) {
        visit(absolute, path, vendored, false);
      } else if (entry.isSymbolicLink()) {
        // Linked directories are not followed: they could loop, and a target inside the root is walked anyway.
        if (isFile(absolute)) visit(absolute, path, vendored, true);
      }
    }
  };
  walk(root, '', false);

  // A script reachable through a symlink too is linted once, under its real name when that is on the list.
  const byRealPath = new Map<string, Candidate>();
  for (const candidate of candidates) {
    const seen = byRealPath.get(candidate.real);
    if (!seen || (seen.symlink && !candidate.symlink)) byRealPath.set(candidate.real, candidate);
  }
  for (const candidate of candidates) {
    const kept = byRealPath.get(candidate.real);
    if (kept && kept !== candidate) skipped.push({ path: candidate.path, reason: `same file as ${kept.path}` });
  }
  const rcCache = new Map<string, boolean>();
  const scripts = [...byRealPath.values()]
    .map(({ path, verdict }) => ({
      path: toPosix(path),
      foundBy: verdict.foundBy,
      dialect: verdict.dialect ?? (shellcheckrcSetsShell(dirname(join(root, path)), rcCache) ? 'shellcheckrc' : undefined),
    }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    scripts,
    skipped,
    unmatchedLintPaths: options.lintPaths.filter((pattern) => !matchedLintPaths.has(pattern)),
  };
}
