import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** apt's configuration for a snapshot or frozen mirror, whose Release files are past their Valid-Until date. */
export const NO_VALID_UNTIL_CONF = 'Acquire::Check-Valid-Until "false";\n';

/**
 * Debian's archive keyring. Every Debian bootstrap names it explicitly: GitHub's Ubuntu runners have no
 * Debian keys in apt's trusted set, and mmdebstrap adds a signed-by only when it finds this file.
 */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The host tool entry that makes sure the keyring is installed (package debian-archive-keyring on Debian and Ubuntu). */
export const DEBIAN_KEYRING_TOOL = { command: DEBIAN_KEYRING, package: 'debian-archive-keyring' } as const;

/** mmdebstrap's option for it. */
export function keyringArgs(): string[] {
  return [`--keyring=${DEBIAN_KEYRING}`];
}

/** mmdebstrap options for check-valid-until (none when apt should check, as it does by default). */
export function validityAptopts(checkValidUntil: boolean): string[] {
  return checkValidUntil ? [] : ['--aptopt=Acquire::Check-Valid-Until "false"'];
}

/** The os-release ID of the host, or undefined. */
export function hostOsId(root = '/'): string | undefined {
  try {
    const text = readFileSync(join(root, 'etc/os-release'), 'utf8');
    return /^ID=(.*)$/m.exec(text)?.[1]?.replace(/"/g, '').trim();
  } catch {
    return undefined;
  }
}

/**
 * The Debian mirror the host's apt uses (deb822 `URIs:` or one-line `deb` entries), skipping
 * security and other archives. Only on a Debian host: an Ubuntu runner's mirror is not a Debian mirror.
 */
export function hostDebianMirror(root = '/'): string | undefined {
  if (hostOsId(root) !== 'debian') return undefined;
  const candidates: string[] = [];
  const dir = join(root, 'etc/apt/sources.list.d');
  const files = existsSync(dir)
    ? readdirSync(dir)
        .sort()
        .map((f) => join(dir, f))
    : [];
  for (const file of [...files, join(root, 'etc/apt/sources.list')]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        if (/^Enabled:\s*no/im.test(stanza)) continue;
        if (!/^Types:.*\bdeb\b/im.test(stanza)) continue;
        const suites = /^Suites:(.*)$/im.exec(stanza)?.[1] ?? '';
        if (/-security|-backports/.test(suites) && !/(^|\s)[a-z]+(\s|$)/.test(suites.replace(/\S+-\S+/g, ''))) continue;
        const uris = /^URIs:(.*)$/im.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        candidates.push(...uris);
      }
    } else if (file.endsWith('.list')) {
      for (const m of text.matchAll(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/gm)) {
        if (!/-security|-backports/.test(m[2])) candidates.push(m[1]);
      }
    }
  }
  const mirror = candidates.find((u) => /^https?:\/\//.test(u) && !/security/.test(u));
  return mirror?.replace(/\/+$/, '');
}

/**
 * apt's complaint about a mirror whose Release file is past its Valid-Until (a stale or snapshot mirror), with
 * the advice that goes with it; undefined when the text has none.
 */
export function expiredIndex(text: string): string | undefined {
  const m = /Release file for (\S+) is expired[^.\n]*/.exec(text);
  return m
    ? `the mirror's index has expired: ${m[0]} (a stale or snapshot mirror? check-valid-until: false accepts it)`
    : undefined;
}
