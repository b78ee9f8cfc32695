import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Debian's names for what a build uploads (package_version_arch.deb, .udeb, .changes, .buildinfo): policy's
 * characters only, so a name can go into a command line or a hook's shell text as it is.
 */
const BUILD_OUTPUT = /^[a-z0-9][a-z0-9+.-]*_[A-Za-z0-9.+~-]+(_[a-z0-9-]+)?\.(u?deb|changes|buildinfo)$/;

/** Does the name end like a build's upload (whatever else is in it)? */
const LOOKS_LIKE_OUTPUT = /\.(u?deb|changes|buildinfo)$/;

/**
 * The files a package build left in its output directory, written by the package under test and so untrusted:
 * regular files under Debian's names are taken; links, directories, devices and odd names are refused by
 * name (a link would make the host copy any file it can read into the artifacts, a name like `x$(id).deb`
 * would reach mmdebstrap's hook).
 */
export function buildOutputFiles(dir: string): { files: string[]; refused: string[] } {
  const files: string[] = [];
  const refused: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!LOOKS_LIKE_OUTPUT.test(name)) continue;
    const st = lstatSync(join(dir, name));
    if (!BUILD_OUTPUT.test(name)) refused.push(`${JSON.stringify(name)} (not a Debian package file name)`);
    else if (!st.isFile()) refused.push(`${name} (not a regular file)`);
    else files.push(name);
  }
  return { files, refused };
}
