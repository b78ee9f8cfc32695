/**
 * The validators of single input values: each takes the input's name and its value and returns the parsed value or
 * throws an InputError that names the input. parseConfig (config.ts) puts them together.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { RELEASES } from './debian.js';
import { InputError } from './errors.js';
import { globToRegExp } from './lint/glob.js';

/** Half of a UTF-16 surrogate pair without its other half. */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// Characters that mean something to a shell; nothing we pass on may contain them.
const SHELL_META = /[;&|`$<>(){}\\!*?[\]#~'"\n\r\0]/;

export function oneOf<T extends string>(input: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InputError(input, value, `one of ${allowed.join(', ')}`);
}

export function boolean(input: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InputError(input, value, 'true or false');
}

export function release(input: string, value: string): string {
  return oneOf(input, value.trim(), RELEASES);
}

const SIZE_UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "3G", "2500M", "1.5G" -> bytes. */
export function size(input: string, value: string, min: number, max: number): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])(?:i?B)?$/i.exec(value.trim());
  const what = `a size such as 3G or 2500M, between ${formatBytes(min)} and ${formatBytes(max)}`;
  if (!m) throw new InputError(input, value, what);
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()]);
  if (bytes < min || bytes > max) throw new InputError(input, value, what);
  return bytes;
}

export function formatBytes(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const n = bytes / SIZE_UNITS[unit];
    if (n >= 1) return `${Number.isInteger(n) ? n : n.toFixed(1)}${unit}`;
  }
  return `${bytes}B`;
}

/** "90", "90s", "10m", "1h" -> seconds. */
export function duration(input: string, value: string, min: number, max: number): number {
  const m = /^(\d+)\s*([smh]?)$/.exec(value.trim());
  const what = `a duration such as 90s, 10m or 1h, between ${min}s and ${max}s`;
  if (!m) throw new InputError(input, value, what);
  const seconds = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600 }[m[2] as '' | 's' | 'm' | 'h'];
  if (seconds < min || seconds > max) throw new InputError(input, value, what);
  return seconds;
}

export function integer(input: string, value: string, min: number, max: number): number {
  const v = value.trim();
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new InputError(input, value, `a whole number from ${min} to ${max}`);
  }
  return Number(v);
}

/** RFC 1123 host name (labels of letters, digits and inner hyphens). */
export function hostname(input: string, value: string): string {
  const v = value.trim();
  const label = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
  if (v.length > 253 || !v.split('.').every((l) => label.test(l))) {
    throw new InputError(input, value, 'a host name of letters, digits and inner hyphens, labels separated by dots');
  }
  return v;
}

/** Debian package names, space/comma/newline separated. */
export function packageList(input: string, value: string): string[] {
  const names = splitList(value);
  for (const n of names) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) {
      throw new InputError(
        input,
        n,
        'Debian package names (lower case letters, digits, + - .), separated by spaces, commas or newlines',
      );
    }
  }
  return names;
}

export function splitList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Glob patterns: one per line or comma separated; no option-like or shell-active characters besides glob ones. */
export function globList(input: string, value: string): string[] {
  const globs = value
    .split(/[\n,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  for (const g of globs) {
    if (g.startsWith('-') || /[;&|`$<>\\\0'"]/.test(g) || isAbsolute(g) || g.split('/').includes('..')) {
      throw new InputError(
        input,
        g,
        'relative glob patterns inside the working directory, without leading - or shell characters',
      );
    }
    try {
      globToRegExp(g);
    } catch {
      throw new InputError(input, g, 'glob patterns with valid character classes ([a-z], not [z-a])');
    }
  }
  return globs;
}

/** A path relative to base (or absolute), that cannot be read as an option. */
export function path(input: string, value: string, base: string, opts: { mustExist?: 'file' | 'dir' } = {}): string {
  const v = value.trim();
  if (v === '' || v.startsWith('-') || /[\0\n\r]/.test(v)) {
    throw new InputError(input, value, 'a file system path that does not start with -');
  }
  const full = resolve(base, v);
  // Linux's limits (PATH_MAX, NAME_MAX): a longer path cannot name a file, and would only fail later, elsewhere.
  if (Buffer.byteLength(full) > 4095 || full.split('/').some((name) => Buffer.byteLength(name) > 255)) {
    throw new InputError(input, value, 'a path of at most 4095 bytes, 255 per name');
  }
  if (opts.mustExist) {
    const ok = existsSync(full) && (opts.mustExist === 'dir' ? statSync(full).isDirectory() : statSync(full).isFile());
    if (!ok)
      throw new InputError(input, value, `an existing ${opts.mustExist === 'dir' ? 'directory' : 'file'} (looked for ${full})`);
  }
  return full;
}

/** The real path of `p`, or of its nearest existing parent with the rest appended (the directory may not exist yet). */
function realPathOf(p: string): string {
  const rest: string[] = [];
  for (let dir = p; ; dir = dirname(dir)) {
    try {
      return join(realpathSync(dir), ...rest.reverse());
    } catch {
      if (dirname(dir) === dir) return p;
      rest.push(basename(dir));
    }
  }
}

/**
 * output-dir: a run replaces fixed names inside it (logs, lint, packages, image, goss, ...), and its paths reach
 * QEMU's option strings and the monitor. So: a directory of its own (not /, the home directory, the working
 * directory or one of its parents, also through a link), and no comma, space or other blank in it.
 */
export function outputDirectory(input: string, value: string, cwd: string, workingDirectory: string): string {
  const full = path(input, value, cwd);
  if (/[,\s]/.test(full)) throw new InputError(input, value, 'a path without commas or blanks (QEMU options carry it)');
  const real = realPathOf(full);
  const within = (dir: string): boolean => {
    const d = realPathOf(dir);
    return d === real || d.startsWith(real === '/' ? '/' : `${real}/`);
  };
  const home = homedir();
  const ownDirectory =
    'a directory of its own: not /, the home directory, the working directory or a directory that contains one of them';
  if (real === '/' || (home !== '/' && within(home)) || within(workingDirectory))
    throw new InputError(input, value, ownDirectory);
  return full;
}

export function mirrorUrl(input: string, value: string): string {
  const v = value.trim();
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (url && (url.username || url.password)) {
    // Credentials in the URL would land in result.json and every line that names the mirror: not in this error either.
    url.username = url.username && '***';
    url.password = url.password && '***';
    throw new InputError(input, url.href, 'a mirror URL without a user name or password in it');
  }
  if (!url || !['http:', 'https:'].includes(url.protocol) || !url.hostname || SHELL_META.test(v) || /\s/.test(v)) {
    throw new InputError(input, value, 'an http:// or https:// URL of a Debian mirror, such as http://mirror.example/debian');
  }
  return v.replace(/\/+$/, '');
}

/** Version suffix for a new changelog entry: Debian version characters only. */
export function versionSuffix(input: string, value: string): string {
  const v = value.trim();
  if (v !== '' && !/^[+~.][A-Za-z0-9+.~]*$/.test(v)) {
    throw new InputError(input, value, 'a Debian version suffix starting with +, ~ or . followed by letters, digits, +, . and ~');
  }
  return v;
}

export function gossVersion(input: string, value: string): string {
  const v = value.trim().replace(/^v/, '');
  if (!/^\d+\.\d+\.\d+$/.test(v)) throw new InputError(input, value, 'a goss release such as 0.4.9');
  return v;
}

export function downloadTemplate(input: string, value: string): string {
  const v = value.trim();
  let ok: boolean;
  try {
    const url = new URL(v.replace(/\{(version|arch)\}/g, 'x'));
    ok = ['http:', 'https:'].includes(url.protocol) && !/\s/.test(v);
  } catch {
    ok = false;
  }
  if (!ok) throw new InputError(input, value, 'an http(s) URL template with optional {version} and {arch} placeholders');
  return v;
}

export function artifactPrefix(input: string, value: string): string {
  const v = value.trim();
  const allowed = 'letters, digits, dot, underscore and hyphen, starting with a letter or digit, at most 64 characters';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v)) throw new InputError(input, value, allowed);
  return v;
}

export function password(input: string, value: string): string {
  // Control characters are the serial console's line editing (^C, ^U, ^D, DEL): typed at login they break it.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value) || value.length > 256) {
    throw new InputError(input, '***', 'a single line of at most 256 printable characters (no control characters)');
  }
  return value;
}

/**
 * Splits installer-args like a shell splits words (quotes and backslash escapes),
 * but refuses anything a shell would act on: the words are passed as argv, never through a shell.
 */
export function shellWords(input: string, value: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  const fail = (why: string): never => {
    throw new InputError(input, value, `arguments separated by spaces, optionally quoted; ${why}`);
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (quote === '"' && /[$`\\]/.test(c)) fail('no $, ` or \\ inside double quotes');
      else current += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else if (/[;&|`$<>(){}\\!*?[\]#~\0]/.test(c)) {
      fail(`no shell operators or expansions such as ${JSON.stringify(c)}`);
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) fail('an unclosed quote');
  if (inWord) words.push(current);
  return words;
}
