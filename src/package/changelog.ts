/** The fields of a debian/changelog entry's first line: `source (version) distribution; urgency=...`. */
export interface ChangelogHead {
  source: string;
  version: string;
  distribution: string;
}

export const AUTOMATED_BUILD_MESSAGE = 'Automated build by debian-vm-ci';
export const AUTOMATED_BUILD_MAINTAINER = 'debian-vm-ci <debian-vm-ci@users.noreply.github.com>';

/** Reads the newest entry's head line; throws when the changelog does not start with one. */
export function parseChangelogHead(text: string): ChangelogHead {
  const first = text.split('\n').find((line) => line.trim() !== '' && !line.startsWith('#'));
  const m = first ? /^([a-z0-9][a-z0-9+.-]+) \(([^()\s]+)\) ([a-zA-Z0-9.+\- ]+);/.exec(first) : null;
  if (!m) throw new Error(`debian/changelog does not start with an entry line such as "pkg (1.0-1) unstable; urgency=medium"`);
  return { source: m[1], version: m[2], distribution: m[3].trim() };
}

/** RFC 5322 date as dch writes it: `Sat, 28 Nov 2026 04:00:00 +0000` (always UTC, so the output is deterministic). */
export function changelogDate(date: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    `${days[date.getUTCDay()]}, ${two(date.getUTCDate())} ${months[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}

/**
 * The entry `dch --newversion <version+suffix> --distribution <release>` would add, as grml-debootstrap's
 * CI does for its automated builds: the built package then says which build it came from.
 */
export function automatedBuildEntry(head: ChangelogHead, suffix: string, distribution: string, date: Date): string {
  return [
    `${head.source} (${head.version}${suffix}) ${distribution}; urgency=medium`,
    '',
    `  * ${AUTOMATED_BUILD_MESSAGE}`,
    '',
    ` -- ${AUTOMATED_BUILD_MAINTAINER}  ${changelogDate(date)}`,
    '',
    '',
  ].join('\n');
}

/** The changelog with the automated-build entry on top; returns the new text and version. */
export function addAutomatedBuildEntry(
  changelog: string,
  suffix: string,
  distribution: string,
  date: Date,
): { text: string; version: string; head: ChangelogHead } {
  const head = parseChangelogHead(changelog);
  return {
    text: automatedBuildEntry(head, suffix, distribution, date) + changelog,
    version: head.version + suffix,
    head,
  };
}
