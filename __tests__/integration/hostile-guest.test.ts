import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_GUEST_FILE } from '../../src/vm/guest-file.js';
import { MAX_SESSION_CONSOLE } from '../../src/vm/console.js';
import { CliRun, ROOT, stage } from '../support/cli-run.js';
import { filesContaining, newScratchDirs, processesMentioning, scratchDirs } from '../support/leftovers.js';

/*
 * A guest that attacks the host, built like the fault suite's runs (the example's mmdebstrap image, QEMU under TCG,
 * goss in the guest): goss's command tests run as root in the guest, with the power a package's maintainer script
 * or a unit of the system under test has. Each run must end with a clear diagnosis and its reports written, the
 * host's canary file unchanged and unread, and nothing left running.
 */
const work = mkdtempSync(join(tmpdir(), 'dvc-hostile-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A host file and directory the guest knows the paths of; nothing of the run may read or change them.
const canaryDir = join(work, 'canary');
const canary = join(canaryDir, 'canary.txt');
const CANARY_TEXT = `host canary ${Math.random().toString(36).slice(2)}\n`;
const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
let canarySum = '';
// A service on the runner's loopback, where an open user-mode network lets a guest in at 10.0.2.2: none may connect.
const loopbackService = createNetServer((s) => {
  loopbackConnections += 1;
  s.destroy();
});
let loopbackConnections = 0;
let loopbackPort = 0;
beforeAll(async () => {
  mkdirSync(canaryDir);
  writeFileSync(canary, CANARY_TEXT);
  canarySum = sha256(canary);
  await new Promise<void>((r) => loopbackService.listen(0, '127.0.0.1', r));
  loopbackPort = (loopbackService.address() as AddressInfo).port;
});
afterAll(async () => {
  expect(sha256(canary), 'the canary file changed').toBe(canarySum);
  await new Promise((r) => loopbackService.close(r));
  expect(loopbackConnections, "connections from a guest to the runner's loopback").toBe(0);
});

const figures: string[] = [];
afterAll(() => console.log(`hostile guest figures:\n${figures.join('\n')}`));

/*
 * The example with a hostile maintainer script: its postinst runs while the run's apt proxy serves the guest (the
 * first boot that installs the built packages: the suite runs as root), finds the proxy in apt's configuration and
 * sends it a malformed request, requests for the runner's own addresses and the cloud's metadata service, for a
 * path that is no archive's, a POST and tunnels. It prints the status line of each answer. Then it goes around the
 * proxy: straight to a service on the runner's loopback (10.0.2.2 in an open user-mode network) and to the
 * metadata service. It exits 0.
 */
const hostilePostinst = (): string => `#!/bin/bash
set -u
proxy=$(sed -n 's|.*http://\\([0-9.]*\\):\\([0-9]*\\)/.*|\\1/\\2|p' /etc/apt/apt.conf.d/99zz-debian-vm-ci-proxy 2>/dev/null)
direct() {
  if timeout 10 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then echo "hostile: direct $1:$2 -> connected"
  else echo "hostile: direct $1:$2 -> no connection"; fi
}
ask() {
  exec 3<>"/dev/tcp/\${proxy:-10.0.2.2/1}" || { echo "hostile: $1 -> no connection"; return 0; }
  printf '%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" >&3
  IFS= read -r -t 90 line <&3 || line="no answer"
  echo "hostile: $1 -> \${line%$'\r'}"
  exec 3<&-
}
ask "GET http://deb.example.invalid/debian/pool/main/x/%zz.deb"
ask "GET http://127.0.0.1/debian/dists/x/Release"
ask "GET http://169.254.169.254/latest/meta-data/"
ask "GET http://deb.example.invalid/index.html"
ask "POST http://deb.example.invalid/debian/dists/x/Release"
ask "CONNECT 169.254.169.254:80"
ask "CONNECT deb.example.invalid:443"
direct 10.0.2.2 ${loopbackPort}
direct 169.254.169.254 80
exit 0
`;
const hostileProject = join(work, 'hostile-hello');
beforeAll(() => {
  cpSync(join(ROOT, 'examples/hello'), hostileProject, { recursive: true });
  writeFileSync(join(hostileProject, 'debian/postinst'), hostilePostinst(), { mode: 0o755 });
});

let n = 0;
function start(gossfileText: string, project: 'example' | 'hostile package' = 'example'): { run: CliRun; before: string[] } {
  n += 1;
  const gossfile = join(work, `hostile-${n}.yaml`);
  writeFileSync(gossfile, gossfileText);
  const before = scratchDirs();
  const run = new CliRun(join(work, `out-${n}`), [
    '--working-directory',
    project === 'example' ? 'examples/hello' : hostileProject,
    '--installer',
    'mmdebstrap',
    '--install-profile',
    'fast',
    '--lint',
    'false',
    ...(project === 'example' ? ['--build-package', 'false'] : ['--install-built-packages', 'true']),
    '--upload-image',
    'never',
    '--gossfile',
    gossfile,
    // The traps are planted by the diagnostics batch after goss passed: gathered on every run.
    '--diagnostics',
    'always',
  ]);
  return { run, before };
}

function checked(run: CliRun, before: string[]): void {
  expect(processesMentioning(run.outputDir), 'processes left running').toEqual([]);
  expect(newScratchDirs(before), 'scratch directories left behind').toEqual([]);
  // The canary's text reached no report: nothing was read through the guest's links.
  expect(filesContaining(run.outputDir, CANARY_TEXT.trim())).toEqual([]);
  expect(sha256(canary)).toBe(canarySum);
  for (const f of ['result.json', 'summary.md', 'serial.log', 'logs/validate.log']) {
    expect(existsSync(join(run.outputDir, f)), f).toBe(true);
  }
}

describe('a hostile guest', () => {
  it('plants links to host files, a FIFO and a 64 GiB sparse file in the share, and attacks the apt proxy from a maintainer script: none followed, the proxy refuses and survives, the run says so', async () => {
    // A fdisk in root's PATH that the diagnostics batch runs after it wrote the first files: it replaces them.
    const { run, before } = start(
      `command:
  plant share traps for the diagnostics:
    exec: |
      cat > /usr/local/sbin/fdisk <<'EOF'
      #!/bin/sh
      cd /run/debian-vm-ci || exit 0
      rm -f diag-os-release.txt && ln -s ${canary} diag-os-release.txt
      rm -f diag-uname.txt && ln -s ${canaryDir} diag-uname.txt
      rm -f diag-dpkg-l.txt && { mkfifo diag-dpkg-l.txt || echo 'mkfifo: refused by the share'; }
      rm -f diag-journal.txt && truncate -s 64G diag-journal.txt
      echo planted
      EOF
      chmod 755 /usr/local/sbin/fdisk
    exit-status: 0
  the test VM's network is walled too:
    exec: if timeout 10 bash -c 'exec 3<>/dev/tcp/10.0.2.2/${loopbackPort}'; then echo reached; else echo walled; fi
    exit-status: 0
    stdout: [walled]
    timeout: 30000
`,
      'hostile package',
    );
    const code = await run.done;
    const result = run.result();
    expect(code, run.out.slice(-3000)).toBe(1);
    expect(result.failureKind).toBe('test');
    // The proxy answered every hostile request and kept serving: apt installed the package after them.
    expect(stage(result, 'install')?.status).toBe('passed');
    const answers = [...readFileSync(join(run.outputDir, 'logs/install.log'), 'utf8').matchAll(/^.*hostile: (.*)$/gm)].map(
      (m) => m[1],
    );
    figures.push(`apt proxy attack:\n  ${answers.join('\n  ')}`);
    expect(answers).toEqual([
      expect.stringMatching(/^GET http:\/\/deb\.example\.invalid\/debian\/pool\/main\/x\/%zz\.deb -> HTTP\/1\.1 502 /),
      expect.stringMatching(/^GET http:\/\/127\.0\.0\.1\/debian\/dists\/x\/Release -> HTTP\/1\.1 403 /),
      expect.stringMatching(/^GET http:\/\/169\.254\.169\.254\/latest\/meta-data\/ -> HTTP\/1\.1 403 /),
      expect.stringMatching(/^GET http:\/\/deb\.example\.invalid\/index\.html -> HTTP\/1\.1 403 /),
      expect.stringMatching(/^POST .* -> HTTP\/1\.1 403 /),
      'CONNECT 169.254.169.254:80 -> HTTP/1.1 403 Forbidden',
      'CONNECT deb.example.invalid:443 -> HTTP/1.1 403 Forbidden',
      // The walled network: around the proxy, nothing answers.
      `direct 10.0.2.2:${loopbackPort} -> no connection`,
      'direct 169.254.169.254:80 -> no connection',
    ]);
    expect(run.out).toMatch(/install: installed as root of the VM/);
    // QEMU's 9p server refuses to make a FIFO (mknod) for the guest, as it did here (ENXIO): then there is none to refuse.
    const fifoRefusedByShare = readFileSync(join(run.outputDir, 'diagnostics/fdisk.txt'), 'utf8').includes(
      'mkfifo: refused by the share',
    );
    const planted = [
      'diag-os-release.txt (a symbolic link)',
      'diag-uname.txt (a symbolic link)',
      ...(fifoRefusedByShare ? [] : ['diag-dpkg-l.txt (a FIFO)']),
    ];
    figures.push(
      `share traps: the FIFO was ${fifoRefusedByShare ? 'refused by the 9p share itself' : 'made, and refused by us'}`,
    );
    expect(stage(result, 'validate')?.error).toBe(
      `something in the guest planted ${planted.length} thing(s) in the share where the host reads the guest's output, none followed or read: ${planted.join(', ')}`,
    );
    // goss's own verdict is kept and reported; the refused files are missing from diagnostics/, the huge one is cut.
    // The trap command, and the walled network's command with its exit status and its output.
    expect(result.goss).toEqual({ tests: 3, failures: 0, skipped: 0 });
    expect(existsSync(join(run.outputDir, 'goss/goss.junit.xml'))).toBe(true);
    const diag = join(run.outputDir, 'diagnostics');
    expect(existsSync(join(diag, 'os-release.txt'))).toBe(false);
    expect(existsSync(join(diag, 'uname.txt'))).toBe(false);
    expect(existsSync(join(diag, 'dpkg-l.txt'))).toBe(false);
    expect(readFileSync(join(diag, 'fdisk.txt'), 'utf8')).toMatch(/planted\n$/);
    expect(statSync(join(diag, 'journal.txt')).size).toBeLessThan(MAX_GUEST_FILE + 100);
    expect(readFileSync(join(diag, 'journal.txt')).subarray(MAX_GUEST_FILE).toString()).toBe(
      `\n[cut at ${MAX_GUEST_FILE} bytes of ${64 * 1024 ** 3}]\n`,
    );
    // The session was not broken by it: the guest was powered off cleanly.
    expect(run.out).toMatch(/validate: powering the guest off\n.*validate: QEMU exited with status 0/);
    figures.push(`share traps: diagnosed in ${((performance.now() - run.started) / 1000).toFixed(1)}s (whole run)`);
    checked(run, before);
  });

  it('floods its console after the login without a newline: QEMU stopped at the cap, serial.log bounded', async () => {
    const { run, before } = start(`command:
  flood the serial console:
    exec: head -c 200000000 /dev/zero | tr '\\000' x > /dev/ttyS0
    exit-status: 0
    timeout: 3600000
`);
    const code = await run.done;
    const result = run.result();
    expect(code, run.out.slice(-3000)).toBe(1);
    expect(result.failureKind).toBe('test');
    expect(stage(result, 'validate')?.error).toBe(
      `the guest wrote more than ${MAX_SESSION_CONSOLE / 1024 ** 2} MiB to its serial console after the login (something prints in a loop): QEMU was stopped`,
    );
    const serial = statSync(join(run.outputDir, 'serial.log')).size;
    figures.push(
      `console flood: stopped in ${((performance.now() - run.started) / 1000).toFixed(1)}s (whole run), serial.log ${serial} bytes`,
    );
    expect(serial).toBeGreaterThan(MAX_SESSION_CONSOLE);
    // What QEMU wrote between the cap and its stop: far below the 200 MB the guest meant to write.
    expect(serial).toBeLessThan(MAX_SESSION_CONSOLE + 16 * 1024 * 1024);
    checked(run, before);
  });
});
