import { basename, extname } from 'node:path';

/*
 * Whether one file is a shell script shellcheck can check, and how shellcheck learns its dialect: by
 * extension, by shebang (env and busybox unwrapped), by a `# shellcheck shell=` directive.
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

export type FoundBy = 'extension' | 'shebang' | 'lint-paths';
/** How shellcheck learns a script's dialect without --shell; undefined when it cannot (then lint-shell applies). */
export type DialectSource = 'shebang' | 'directive' | 'extension' | 'shellcheckrc';

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
