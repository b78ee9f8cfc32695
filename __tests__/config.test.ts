import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseContext } from './support/parse-context.js';
import { actionMetadata } from '../src/action-metadata.js';
import { autopkgtestSkip, INPUT_NAMES, InputError, parseConfig, publicConfig } from '../src/config.js';
import { shellWords } from '../src/input-values.js';
import { INSTALLER_NAMES } from '../src/install/installers.js';
import { cliInputs } from '../src/entry.js';

const project = mkdtempSync(join(tmpdir(), 'dvc-config-test-'));
writeFileSync(join(project, 'goss.yaml'), 'file: {}\n');
mkdirSync(join(project, 'sub'));
afterAll(() => rmSync(project, { recursive: true, force: true }));

const ctx = parseContext(project);

function parse(flags: Record<string, string>) {
  return parseConfig(cliInputs(Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])), ctx);
}

function rejection(flags: Record<string, string>): InputError {
  try {
    parse(flags);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(flags)}`);
}

describe('parseConfig', () => {
  it('reads every input that action.yml declares, and nothing else', () => {
    expect([...INPUT_NAMES].sort()).toEqual(
      actionMetadata()
        .inputs.map((i) => i.name)
        .sort(),
    );
  });

  it("action.yml's installer description names every installer of the registry, and no other", () => {
    const described = actionMetadata().inputs.find((i) => i.name === 'installer')?.description ?? '';
    expect([...described.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]).sort()).toEqual([...INSTALLER_NAMES].sort());
    for (const name of INSTALLER_NAMES)
      expect(parse({ installer: name, 'install-command': name === 'command' ? 'true' : '' }).installer).toBe(name);
    expect(rejection({ installer: 'debootstrap' }).allowed).toBe(`one of ${INSTALLER_NAMES.join(', ')}`);
  });

  it('install-built-packages only with an installer that installs them into the image', () => {
    expect(parse({ installer: 'mmdebstrap', 'install-built-packages': 'true' }).installBuiltPackages).toBe(true);
    expect(parse({ installer: 'grml-debootstrap', 'install-built-packages': 'true' }).installBuiltPackages).toBe(true);
    const e = rejection({ installer: 'command', 'install-command': 'true', 'install-built-packages': 'true' });
    expect(e.input).toBe('install-built-packages');
    expect(e.allowed).toBe(
      'false with installer command (built packages are installed into grml-debootstrap, mmdebstrap images)',
    );
  });

  it('applies action.yml defaults and the host context', () => {
    const c = parse({});
    expect(c.release).toBe('trixie');
    expect(c.installer).toBe('grml-debootstrap');
    expect(c.mirror).toBe('http://mirror.example/debian');
    expect(c.imageSizeBytes).toBe(3 * 1024 ** 3);
    expect(c.vmCpus).toBe(2);
    expect(c.vmMemoryMiB).toBe(1024);
    // Walled to the apt proxy unless asked: the guest is untrusted.
    expect(c.vmNetwork).toBe('restricted');
    expect(c.password).toBe('generated-password');
    expect(c.passwordGenerated).toBe(true);
    expect(c.gossfile).toBe(join(project, 'goss.yaml'));
    expect(c.outputDir).toBe(join(project, 'out'));
    expect(c.buildRelease).toBe('trixie');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes the same values from flags as a workflow would give', () => {
    const c = parse({
      release: 'bookworm',
      'image-size': '2500M',
      'boot-timeout': '5m',
      'installer-args': `--foo "a b" 'c d'`,
      packages: 'curl, jq\nvim',
    });
    expect(c.release).toBe('bookworm');
    expect(c.imageSizeBytes).toBe(2500 * 1024 ** 2);
    expect(c.bootTimeout).toBe(300);
    expect(c.installerArgs).toEqual(['--foo', 'a b', 'c d']);
    expect(c.packages).toEqual(['curl', 'jq', 'vim']);
  });

  it('never echoes the password', () => {
    const c = parse({ password: 's3cret' });
    expect(JSON.stringify(publicConfig(c))).not.toContain('s3cret');
  });

  // Each bad value names its input, echoes the value and says what is allowed.
  it.each([
    ['release', 'trixie; rm -rf /', /one of bullseye, bookworm/],
    ['release', 'buster', /one of/],
    ['host-release', '$(reboot)', /one of/],
    ['build-release', 'trixie\nsid', /one of/],
    ['hostname', '-rf', /host name/],
    ['hostname', 'a_b', /host name/],
    ['hostname', 'host;reboot', /host name/],
    ['image-size', '3', /size such as 3G/],
    ['image-size', '100M', /between 256M/],
    ['image-size', '-3G', /size such as/],
    ['vm-memory', 'lots', /size such as/],
    ['vm-cpus', '-1', /whole number/],
    ['vm-cpus', '2; id', /whole number/],
    ['boot-timeout', '5 minutes', /duration/],
    ['boot-timeout', '1s', /between 10s/],
    ['install-timeout', '0', /between 60s/],
    ['goss-retry-timeout', '`id`', /duration/],
    ['accel', 'hvf', /one of auto, kvm, tcg/],
    ['installer', 'debootstrap', /one of grml-debootstrap, mmdebstrap, command/],
    ['isolation', 'docker', /one of auto, vm, chroot/],
    ['builder-backend', 'docker', /one of auto, kvm, uml, qemu/],
    ['firmware', 'coreboot', /one of bios, uefi/],
    ['vm-network', 'closed', /one of restricted, open/],
    ['architecture', 'i386', /one of amd64, arm64/],
    ['lint', 'yes', /true or false/],
    ['lint-severity', 'fatal', /one of error, warning, info, style/],
    ['lint-fail-on', 'any', /one of error, warning, info, style, never/],
    ['lint-shell', 'zsh', /one of/],
    ['lint-paths', '--exec=rm', /relative glob/],
    ['lint-paths', '../outside/*.sh', /relative glob/],
    ['lint-exclude', '/etc/*', /relative glob/],
    ['packages', 'curl;reboot', /Debian package names/],
    ['packages', '--allow-unauthenticated', /Debian package names/],
    ['mirror', 'ftp://mirror.example/debian', /http:\/\/ or https:\/\//],
    ['mirror', 'http://mirror.example/debian;id', /http:\/\/ or https:\/\//],
    ['mirror', '-o Acquire::x=y', /http:\/\/ or https:\/\//],
    // A password in the URL would land in result.json and every log line that names the mirror.
    [
      'mirror',
      'http://user:s3cret@mirror.example/debian',
      /^Invalid input 'mirror': "http:\/\/\*\*\*:\*\*\*@mirror\.example\/debian"\. Allowed: a mirror URL without a user name or password/,
    ],
    ['package-version-suffix', '1.0; id', /version suffix/],
    ['installer-args', '--packages x; rm -rf /', /no shell operators/],
    ['installer-args', '--x $(id)', /no shell operators/],
    ['installer-args', '"unclosed', /unclosed quote/],
    ['gossfile', 'missing.yaml', /existing file/],
    ['gossfile', '-rf', /does not start with -/],
    ['goss-vars', 'nope.yaml', /existing file/],
    ['goss-version', 'latest', /goss release/],
    ['goss-download-url', 'file:///etc/passwd', /http\(s\) URL template/],
    ['goss-path', '--help', /does not start with -/],
    ['working-directory', 'does-not-exist', /existing directory/],
    ['output-dir', '-o', /does not start with -/],
    ['upload-image', 'sometimes', /one of always, failure, never/],
    ['artifact-prefix', 'a/b', /letters, digits/],
    ['retention-days', '91', /whole number from 0 to 90/],
    ['mode', 'dry-run', /one of run, report/],
    ['cache', 'maybe', /true or false/],
  ])('rejects %s = %j', (input, value, allowed) => {
    const e = rejection({ [input]: value });
    expect(e.input).toBe(input);
    expect(e.message).toContain(`Invalid input '${input}'`);
    expect(e.message).toMatch(allowed);
  });

  it('output-dir: a directory of its own, without commas or blanks (a run replaces names inside it; QEMU options carry it)', () => {
    for (const bad of ['/', '.', project, join(project, '..'), homedir(), 'out,file=/etc/passwd', 'my out']) {
      expect(rejection({ 'output-dir': bad }).input, bad).toBe('output-dir');
    }
    // Through a link as well: a link to the working directory's parent.
    const link = join(mkdtempSync(join(tmpdir(), 'dvc-config-link-')), 'to-parent');
    symlinkSync(join(project, '..'), link);
    expect(rejection({ 'output-dir': link }).input).toBe('output-dir');
    rmSync(dirname(link), { recursive: true, force: true });
    expect(parse({ 'output-dir': 'out' }).outputDir).toBe(join(project, 'out'));
    expect(parse({ 'output-dir': join(tmpdir(), 'dvc-elsewhere') }).outputDir).toBe(join(tmpdir(), 'dvc-elsewhere'));
  });

  it('autopkgtest: auto runs when debian/tests/control exists and packages are built; true requires both at parse time', () => {
    expect(autopkgtestSkip(parse({}))).toBe('the project has no debian/tests/control');
    expect(autopkgtestSkip(parse({ autopkgtest: 'false' }))).toBe('autopkgtest: false');
    expect(rejection({ autopkgtest: 'true' }).allowed).toBe('a run where it can work (the project has no debian/tests/control)');
    expect(rejection({ autopkgtest: 'yes' }).allowed).toBe('one of auto, true, false');
    const withTests = mkdtempSync(join(tmpdir(), 'dvc-config-dep8-'));
    try {
      mkdirSync(join(withTests, 'debian/tests'), { recursive: true });
      writeFileSync(join(withTests, 'debian/tests/control'), 'Tests: t\n');
      writeFileSync(join(withTests, 'goss.yaml'), 'file: {}\n');
      const at = (flags: Record<string, string>) => parse({ 'working-directory': withTests, ...flags });
      expect(autopkgtestSkip(at({}))).toBeUndefined();
      expect(at({ autopkgtest: 'true' }).autopkgtest).toBe('true');
      expect(autopkgtestSkip(at({ 'build-package': 'false' }))).toBe(
        'build-package: false, so there are no built packages to test',
      );
      expect(rejection({ 'working-directory': withTests, autopkgtest: 'true', install: 'false' }).input).toBe('autopkgtest');
      expect(at({ 'autopkgtest-timeout': '45m' }).autopkgtestTimeout).toBe(2700);
    } finally {
      rmSync(withTests, { recursive: true, force: true });
    }
  });

  it('lifecycle: off by default; on only where packages are built and a VM is installed', () => {
    expect(parse({}).lifecycle).toBe(false);
    expect(parse({ lifecycle: 'true' }).lifecycle).toBe(true);
    expect(rejection({ lifecycle: 'true', 'build-package': 'false' }).input).toBe('lifecycle');
    expect(rejection({ lifecycle: 'true', install: 'false' }).input).toBe('lifecycle');
    expect(rejection({ lifecycle: 'true', installer: 'mmdebstrap', 'install-built-packages': 'true' }).allowed).toMatch(
      /^an image without the built packages/,
    );
    expect(parse({ 'lifecycle-timeout': '20m' }).lifecycleTimeout).toBe(1200);
  });

  it('upgrade-to: empty by default; a later code name, with install and validate; its own gossfile optional', () => {
    expect(parse({}).upgradeTo).toBe('');
    const c = parse({ release: 'bookworm', 'upgrade-to': 'trixie' });
    expect([c.upgradeTo, c.gossfileAfterUpgrade, c.upgradeTimeout]).toEqual(['trixie', '', 3600]);
    expect(rejection({ release: 'trixie', 'upgrade-to': 'bookworm' }).allowed).toBe('a release after trixie: forky, sid');
    expect(rejection({ release: 'trixie', 'upgrade-to': 'trixie' }).input).toBe('upgrade-to');
    expect(rejection({ release: 'stable', 'upgrade-to': 'forky' }).allowed).toMatch(/code name \(release is stable\)/);
    expect(rejection({ release: 'bookworm', 'upgrade-to': 'testing' }).allowed).toMatch(/^a release code name/);
    expect(rejection({ release: 'bookworm', 'upgrade-to': 'buster' }).input).toBe('upgrade-to');
    expect(rejection({ release: 'bookworm', 'upgrade-to': 'trixie', validate: 'false' }).allowed).toMatch(/validate true/);
    expect(rejection({ release: 'bookworm', 'upgrade-to': 'trixie', install: 'false' }).input).toBe('upgrade-to');
    writeFileSync(join(project, 'after.yaml'), 'file: {}\n');
    expect(
      parse({ release: 'bookworm', 'upgrade-to': 'trixie', 'gossfile-after-upgrade': 'after.yaml' }).gossfileAfterUpgrade,
    ).toBe(join(project, 'after.yaml'));
    expect(rejection({ release: 'bookworm', 'upgrade-to': 'trixie', 'gossfile-after-upgrade': 'missing.yaml' }).input).toBe(
      'gossfile-after-upgrade',
    );
    expect(rejection({ 'gossfile-after-upgrade': 'after.yaml' }).allowed).toBe('empty unless upgrade-to names a release');
    expect(parse({ release: 'bookworm', 'upgrade-to': 'trixie', 'upgrade-timeout': '2h' }).upgradeTimeout).toBe(7200);
  });

  it('refuses, naming the input, what the fuzz test found: a path past PATH_MAX, a lone surrogate, NUL', () => {
    // Both crashed parseConfig before (a RangeError from a recursion per path name; U+FFFD in the builder's job).
    const long = rejection({ 'output-dir': 'file:///etc/passwd'.repeat(2000) });
    expect([long.input, long.allowed]).toEqual(['output-dir', 'a path of at most 4095 bytes, 255 per name']);
    expect(long.message).toMatch(/… \(36000 characters\)\. Allowed/);
    expect(rejection({ gossfile: `${'a'.repeat(256)}.yaml` }).input).toBe('gossfile');
    expect(rejection({ mirror: 'http://mirror.example/debian\ud800' }).allowed).toMatch(/lone surrogates/);
    expect(rejection({ hostname: 'vm\udc00x' }).input).toBe('hostname');
    expect(rejection({ password: 'a\0b' }).input).toBe('password');
    expect(parse({ hostname: 'vm', password: 'pässwörd-🙂' }).password).toBe('pässwörd-🙂');
  });

  it('rejects a password with a newline without echoing it', () => {
    const e = rejection({ password: 'abc\ndef' });
    expect(e.message).not.toContain('abc');
  });

  it('rejects control characters in a password: typed at the serial login they edit the line (^C, ^U, DEL)', () => {
    for (const pw of ['qzx\x03qzx', 'qzx\x15qzx', 'qzx\x7fqzx', 'qzx\tqzx']) {
      const e = rejection({ password: pw });
      expect(e.input).toBe('password');
      expect(e.message).not.toContain('qzx');
    }
    expect(parse({ password: 'Grüße-ünicode 1!' }).password).toBe('Grüße-ünicode 1!');
  });

  it('rejects a glob whose character class cannot be compiled, naming the input (it crashed the lint stage)', () => {
    const e = rejection({ 'lint-paths': '[z-a].sh' });
    expect(e.input).toBe('lint-paths');
    expect(e.allowed).toBe('glob patterns with valid character classes ([a-z], not [z-a])');
    expect(rejection({ 'lint-exclude': 'x/[9-0]*' }).input).toBe('lint-exclude');
    expect(parse({ 'lint-paths': 'bin/[a-z]*.sh' }).lintPaths).toEqual(['bin/[a-z]*.sh']);
  });

  it('checks combinations: install-command only with installer command, bios not on arm64', () => {
    expect(rejection({ installer: 'command' }).input).toBe('install-command');
    expect(rejection({ 'install-command': 'echo hi' }).input).toBe('install-command');
    expect(rejection({ architecture: 'arm64' }).input).toBe('firmware');
    expect(parse({ installer: 'command', 'install-command': 'my-installer "$DVC_IMAGE"' }).installCommand).toBe(
      'my-installer "$DVC_IMAGE"',
    );
  });

  it('does not require a gossfile when nothing is validated', () => {
    expect(parse({ validate: 'false', gossfile: 'missing.yaml' }).gossfile).toBe('missing.yaml');
    expect(parse({ install: 'false', gossfile: 'missing.yaml' }).gossfile).toBe('missing.yaml');
  });
});

describe('shellWords', () => {
  it.each([
    ['', []],
    ['a b  c', ['a', 'b', 'c']],
    [`--x "a b" 'c "d"'`, ['--x', 'a b', 'c "d"']],
    [`--empty ""`, ['--empty', '']],
  ])('splits %j', (input, words) => {
    expect(shellWords('installer-args', input)).toEqual(words);
  });
});

describe('the CLI flags', () => {
  it('rejects unknown flags and suggests close ones', () => {
    expect(() => cliInputs(['--relase', 'sid'])).toThrow(/--relase/);
    expect(() => cliInputs(['--image', '3G'])).toThrow(/did you mean --image-size/);
    expect(() => cliInputs(['release'])).toThrow(/flags of the form/);
    expect(() => cliInputs(['--release'])).toThrow(/a value after the flag/);
  });

  it('accepts --name value and --name=value', () => {
    const read = cliInputs(['--release', 'sid', '--image-size=4G']);
    expect(read('release')).toBe('sid');
    expect(read('image-size')).toBe('4G');
    expect(read('firmware')).toBe('bios');
  });
});
