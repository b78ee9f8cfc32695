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
import { classifyFile, looksBinary, SCRIPT_EXTENSIONS, type DialectSource, type FoundBy, type Verdict } from './classify.js';
import { globMatcher, literalBase } from './glob.js';

/*
 * Finds the shell scripts of a project the way its authors would list them: by extension and by
 * shebang, plus lint-paths, minus lint-exclude, never inside VCS metadata or vendored trees.
 *
 * The glob patterns of lint-paths and lint-exclude: glob.ts. lint-exclude wins over everything,
 * lint-paths included. Vendored trees (node_modules, vendor, ...) are searched only along a directory
 * that a lint-paths pattern spells out literally (`vendor/tools/*.sh`), and there only for what
 * lint-paths names.
 */

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
