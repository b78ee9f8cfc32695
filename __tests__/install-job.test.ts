import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseContext } from './support/parse-context.js';
import { parseConfig } from '../src/config.js';
import { cliInputs } from '../src/entry.js';
import { grmlBootAppend, grmlPackageList, INSTALL_JOB, jobParams, takeBuilderImage } from '../src/install/builder-install.js';

const project = mkdtempSync(join(tmpdir(), 'dvc-install-job-test-'));
writeFileSync(join(project, 'goss.yaml'), 'file: {}\n');
const dirsToRemove: string[] = [];
afterAll(() => {
  rmSync(project, { recursive: true, force: true });
  for (const d of dirsToRemove) rmSync(d, { recursive: true, force: true });
});

const ctx = parseContext(project);

function config(flags: Record<string, string>) {
  return parseConfig(cliInputs(Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])), ctx);
}

describe('the grml-debootstrap job in the builder', () => {
  it('hands grml-debootstrap a lean package list whose DHCP client exists in the release', () => {
    // unstable dropped isc-dhcp-client; ifupdown falls back to dhcpcd there.
    for (const release of ['sid', 'unstable', 'forky', 'testing']) {
      const list = grmlPackageList(config({ release }));
      expect(list, release).toContain('dhcpcd-base');
      expect(list, release).not.toContain('isc-dhcp-client');
    }
    for (const release of ['bookworm', 'trixie', 'stable']) {
      expect(grmlPackageList(config({ release })), release).toContain('isc-dhcp-client');
    }
    expect(grmlPackageList(config({ packages: 'curl, jq' })).slice(-2)).toEqual(['curl', 'jq']);
    expect(grmlPackageList(config({ architecture: 'arm64', firmware: 'uefi' }))[0]).toBe('linux-image-arm64');
  });

  it('puts the serial console last on the kernel command line, so that it is /dev/console', () => {
    expect(grmlBootAppend(config({}))).toMatch(/console=tty0 console=ttyS0,115200/);
    expect(grmlBootAppend(config({ architecture: 'arm64', firmware: 'uefi' }))).toMatch(/console=ttyAMA0,115200/);
  });

  it('writes job parameters that bash reads back unchanged, with no password among them', () => {
    const params = jobParams(
      config({ release: 'sid', firmware: 'uefi', 'check-valid-until': 'false', hostname: 'ci-vm', password: 's3cr3t pw' }),
      'http://10.0.2.2:3142/',
    );
    // job.sh sources the file with bash: every value comes back as it was.
    const file = join(project, 'params');
    writeFileSync(file, params);
    const sourced = spawnSync(
      'bash',
      ['-c', '. "$1"; printf "%s|" "$RELEASE" "$VMEFI" "$CHECK_VALID_UNTIL" "$PROXY" "$BOOTAPPEND" "$HOSTNAME"', 'sh', file],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(sourced.error).toBeUndefined();
    expect(sourced.stdout).toBe('sid|1|0|http://10.0.2.2:3142/|console=tty0 console=ttyS0,115200 net.ifnames=0|ci-vm|');
    expect(params).not.toContain('s3cr3t');
  });
});

/**
 * Runs the real job.sh with its fixed paths (/job, /scratch, /etc/debootstrap) moved below a temp dir and
 * stand-ins for the builder's commands on PATH; returns the arguments grml-debootstrap was called with.
 */
function grmlArgsOf(flags: Record<string, string>, installedList = 'ssh\npostfix\n'): string[] {
  return grmlJobRun(flags, installedList).args;
}

/** job.sh run as grmlArgsOf runs it, with built packages in the job dir; what grml-debootstrap got and saw. */
function grmlJobRun(
  flags: Record<string, string>,
  installedList = 'ssh\npostfix\n',
  debs: string[] = [],
  builtInstaller = false,
): {
  args: string[];
  extrapackages: string;
  confDir: string;
  chrootScripts: Record<string, string>;
  extras: string[];
  aptCalls: string[];
  /** http_proxy|https_proxy as grml-debootstrap saw them. */
  proxies: string;
} {
  const root = mkdtempSync(join(tmpdir(), 'dvc-job-run-'));
  try {
    const job = join(root, 'job');
    const bin = join(root, 'bin');
    for (const d of [job, bin, join(root, 'scratch'), join(root, 'etc-debootstrap')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(root, 'etc-debootstrap', 'packages'), installedList);
    const c = config(flags);
    writeFileSync(join(job, 'params'), jobParams(c, 'http://10.0.2.2:3142/'));
    writeFileSync(join(job, 'password'), c.password);
    const packages = c.installProfile === 'fast' ? grmlPackageList(c) : [...c.packages];
    writeFileSync(join(job, 'packages'), packages.length ? packages.join('\n') + '\n' : '');
    writeFileSync(join(job, 'installer-args'), c.installerArgs.map((a) => `${a}\0`).join(''));
    mkdirSync(join(job, 'debs'));
    if (debs.length) mkdirSync(join(job, 'install-debs'));
    for (const d of debs) writeFileSync(join(job, 'install-debs', d), 'not really a package');
    const script = INSTALL_JOB.replaceAll('/job/', `${job}/`)
      .replaceAll('/scratch', join(root, 'scratch'))
      .replaceAll('/etc/debootstrap', join(root, 'etc-debootstrap'))
      .replaceAll('/etc/apt/apt.conf.d/', `${root}/`);
    for (const stub of ['mount', 'dmsetup', 'losetup', 'blockdev', 'sync']) {
      writeFileSync(join(bin, stub), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    }
    writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "$*" >> ${root}/apt-calls\n`, { mode: 0o755 });
    if (builtInstaller) writeFileSync(join(job, 'debs', 'grml-debootstrap_0.129+ci1_all.deb'), 'not really a package');
    writeFileSync(join(bin, 'dpkg-query'), '#!/bin/sh\necho 0.130\n', { mode: 0o755 });
    writeFileSync(
      join(bin, 'grml-debootstrap'),
      `#!/bin/sh\nprintf '%s\\0' "$@" > ${root}/args\nprintf '%s' "\${EXTRAPACKAGES-unset}" > ${root}/extrapackages\nprintf '%s|%s' "\${http_proxy-unset}" "\${https_proxy-unset}" > ${root}/proxies\n`,
      { mode: 0o755 },
    );
    const r = spawnSync('bash', ['-c', script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: `${bin}:/usr/bin:/bin` },
    });
    expect(r.error).toBeUndefined();
    const confDir = join(root, 'etc-debootstrap');
    const args = readFileSync(join(root, 'args'), 'utf8').split('\0').slice(0, -1);
    const at = args.indexOf('--chroot-scripts');
    const chrootScripts: Record<string, string> = {};
    if (at >= 0) {
      const dir = args[at + 1];
      for (const f of readdirSync(dir)) {
        expect(statSync(join(dir, f)).mode & 0o111, `${f} is executable`).not.toBe(0);
        chrootScripts[f] = readFileSync(join(dir, f), 'utf8');
      }
    }
    const extrasDir = join(confDir, 'extrapackages');
    return {
      args,
      extrapackages: readFileSync(join(root, 'extrapackages'), 'utf8'),
      confDir,
      chrootScripts,
      extras: existsSync(extrasDir) ? readdirSync(extrasDir).sort() : [],
      proxies: readFileSync(join(root, 'proxies'), 'utf8'),
      aptCalls: existsSync(join(root, 'apt-calls'))
        ? readFileSync(join(root, 'apt-calls'), 'utf8').split('\n').filter(Boolean)
        : [],
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe('the grml-debootstrap command line (job.sh run with stand-ins)', () => {
  it("passes only what a VM test needs by default: grml-debootstrap's own packages, kernel and variant", () => {
    const args = grmlArgsOf({ password: 'grml', hostname: 'ci-vm', release: 'forky' });
    for (const option of ['--packages', '--nokernel', '--debopt', '--defaultinterfaces', '--remove-configs']) {
      expect(args, option).not.toContain(option);
    }
    expect(args).toEqual(expect.arrayContaining(['--vmfile', '--vmsize', '3G', '--release', 'forky', '--hostname', 'ci-vm']));
    expect(args[args.indexOf('--password') + 1]).toBe('grml');
    expect(args[args.indexOf('--bootappend') + 1]).toBe('console=tty0 console=ttyS0,115200 net.ifnames=0');
    expect(args).toContain('--mirror');
    expect(grmlArgsOf({ firmware: 'uefi' })).toContain('--vmefi');
  });

  it("adds the packages input to grml-debootstrap's own list instead of replacing it", () => {
    const args = grmlArgsOf({ packages: 'curl jq' }, 'ssh\npostfix\n');
    expect(args[args.indexOf('--packages') + 1]).toMatch(/installer-packages$/);
    expect(args).not.toContain('--nokernel');
    expect(args).not.toContain('--debopt');
  });

  it('uses the lean list, no kernel of its own, minbase and dpkg shortcuts only with install-profile: fast', () => {
    const args = grmlArgsOf({ 'install-profile': 'fast' });
    expect(args).toEqual(expect.arrayContaining(['--nokernel', '--packages', '--defaultinterfaces', '--remove-configs']));
    expect(args[args.indexOf('--debopt') + 1]).toMatch(/^--variant=minbase --dpkgopt=force-unsafe-io/);
  });

  it("install-built-packages: the built .deb files are installed with apt in grml-debootstrap's chroot stage", () => {
    const run = grmlJobRun({ 'install-built-packages': 'true' }, undefined, ['hello_1.0_all.deb', 'hello-doc_1.0_all.deb']);
    const at = run.args.indexOf('--chroot-scripts');
    expect(at).toBeGreaterThan(0);
    expect(run.args[at + 1]).toBe(join(run.confDir, 'debian-vm-ci-chroot-scripts'));
    expect(run.extras).toEqual(['hello-doc_1.0_all.deb', 'hello_1.0_all.deb']);
    // grml-debootstrap's own EXTRAPACKAGES step (dpkg -i) is off: apt installs them with their dependencies.
    expect(run.extrapackages).toBe('no');
    const script = Object.entries(run.chrootScripts);
    expect(script).toHaveLength(1);
    // The script runs inside the target, where grml-debootstrap copied the extrapackages directory (the stand-in
    // run moved /etc/debootstrap, in the script's text too).
    expect(script[0][1]).toContain(`apt-get install -y --allow-downgrades ${run.confDir}/extrapackages/*.deb`);
    expect(script[0][1]).toContain(`rm -rf ${run.confDir}/extrapackages`);
    // Without built packages to install, none of it.
    const plain = grmlJobRun({});
    expect(plain.args).not.toContain('--chroot-scripts');
    expect(plain.extrapackages).toBe('unset');
    expect(plain.extras).toEqual([]);
  });

  it('sends https through the apt proxy only for an https mirror, the one host the proxy tunnels to', () => {
    expect(grmlJobRun({ mirror: 'http://mirror.example/debian' }).proxies).toBe('http://10.0.2.2:3142/|unset');
    expect(grmlJobRun({ mirror: 'https://mirror.example/debian' }).proxies).toBe('http://10.0.2.2:3142/|http://10.0.2.2:3142/');
  });

  it('installs the grml-debootstrap this run built even when the builder has a newer one (unstable did)', () => {
    const run = grmlJobRun({}, undefined, [], true);
    expect(run.aptCalls).toEqual([
      'update -q',
      expect.stringMatching(/^install -y -q --allow-downgrades \S+\/grml-debootstrap_0\.129\+ci1_all\.deb$/),
    ]);
    // Not the project's grml-debootstrap: the builder's own, untouched.
    expect(grmlJobRun({}).aptCalls).toEqual([]);
  });

  it('lets apt accept an expired Release file (check-valid-until: false) without other debootstrap options', () => {
    const args = grmlArgsOf({ 'check-valid-until': 'false' });
    expect(args[args.indexOf('--debopt') + 1]).toMatch(/^--aptopt=\S+valid-until$/);
    expect(args).not.toContain('--nokernel');
  });
});

describe('taking the image from the builder (its job directory is untrusted)', () => {
  const setup = () => {
    const d = mkdtempSync(join(tmpdir(), 'dvc-take-image-'));
    dirsToRemove.push(d);
    mkdirSync(join(d, 'job'));
    writeFileSync(join(d, 'export.img'), Buffer.alloc(4096, 1));
    return { d, job: join(d, 'job'), exportFile: join(d, 'export.img'), image: join(d, 'qemu.img') };
  };

  it('cuts the export disk to the size the job wrote', () => {
    const { job, exportFile, image } = setup();
    writeFileSync(join(job, 'qemu.img.size'), '1024\n');
    takeBuilderImage(job, exportFile, image, 'grml-debootstrap');
    expect(statSync(image).size).toBe(1024);
  });

  it.each([['-1'], ['1e9'], ['99999'], ['0'], ['4096; rm -rf /']])('refuses the size %j', (size) => {
    const { job, exportFile, image } = setup();
    writeFileSync(join(job, 'qemu.img.size'), size);
    expect(() => takeBuilderImage(job, exportFile, image, 'grml-debootstrap')).toThrow(/an image size that is not one/);
    expect(existsSync(image)).toBe(false);
  });

  it('never takes a qemu.img that is a link the builder planted, nor a size file that is one', () => {
    const { d, job, exportFile, image } = setup();
    writeFileSync(join(d, 'host-secret'), 'host only');
    symlinkSync(join(d, 'host-secret'), join(job, 'qemu.img'));
    expect(() => takeBuilderImage(job, exportFile, image, 'command')).toThrow(/something other than a regular file/);
    expect(existsSync(image)).toBe(false);
    writeFileSync(join(d, 'size'), '100');
    symlinkSync(join(d, 'size'), join(job, 'qemu.img.size'));
    expect(() => takeBuilderImage(job, exportFile, image, 'command')).toThrow(/something other than a regular file/);
  });

  it('takes a regular qemu.img from the job directory (UML)', () => {
    const { job, exportFile, image } = setup();
    writeFileSync(join(job, 'qemu.img'), 'disk');
    takeBuilderImage(job, exportFile, image, 'command');
    expect(readFileSync(image, 'utf8')).toBe('disk');
  });
});
