import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestFileFollower, inspectGuestFile, readGuestFile } from '../src/vm/guest-file.js';
import { guestJobError, tamperError } from '../src/vm/guest-job.js';
import { GUEST_DIAGNOSTICS, GuestSession, GuestSessionError } from '../src/vm/session.js';
import { fakeGuest } from './support/fake-guest.js';

/*
 * The session against a console that behaves like a Debian guest's serial console (support/fake-guest.ts).
 * The real guest is in the integration tests (pipeline, faults, as-runner).
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function share(): string {
  const d = mkdtempSync(join(tmpdir(), 'dvc-session-test-'));
  dirs.push(d);
  return d;
}

describe('the guest session', () => {
  it('logs in, mounts the share, runs a command with exit status, stdout and stderr, and powers off', async () => {
    const dir = share();
    const { vm, typed, stopped } = fakeGuest(dir, { password: 'Sess-Pw-1' });
    const session = await GuestSession.open(vm, { password: 'Sess-Pw-1', shareDir: dir });
    const r = await session.run('echo out; echo err >&2; exit 3', { timeoutSeconds: 5 });
    expect(r).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    // The command travelled as a file in the share; the console saw only `sh <file> > … 2> …` and the marker.
    expect(typed.some((t) => t.includes('echo out'))).toBe(false);
    expect(await session.powerOff(5)).toBe(0);
    expect(stopped()).toBe(true);
    await expect(session.run('true', { timeoutSeconds: 5 })).rejects.toThrow(/the session is closed/);
  });

  it('is not fooled by output that prints an end marker of its own', async () => {
    const dir = share();
    // A command (or the guest) printing DVC-END-…:0 before the real marker: the nonce does not match.
    const { vm } = fakeGuest(dir, { password: 'pw', noise: 'DVC-END-000000000000-2:0\r\n' });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    expect((await session.run('exit 7', { timeoutSeconds: 5 })).exitCode).toBe(7);
  });

  it('reads the whole exit status when the console delivers its marker in pieces', async () => {
    // goss's 78 arrived once as "…:7" and then "8": the run was reported as exit 7 (a CI run, 2026-12-03).
    const dir = share();
    const { vm } = fakeGuest(dir, { password: 'pw', trickle: true });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    expect((await session.run('exit 78', { timeoutSeconds: 5 })).exitCode).toBe(78);
    expect((await session.run('exit 1', { timeoutSeconds: 5 })).exitCode).toBe(1);
    expect((await session.run('echo 42', { timeoutSeconds: 5 })).stdout).toBe('42\n');
  });

  it('says so when the login is refused, and when the share does not mount', async () => {
    const { vm } = fakeGuest(share(), { password: 'right' });
    await expect(GuestSession.open(vm, { password: 'wrong', shareDir: share() })).rejects.toThrow(
      new GuestSessionError('logging in as root on the serial console failed: Login incorrect'),
    );
    const dir = share();
    const { vm: vm2 } = fakeGuest(dir, { password: 'pw', mount: 'fail' });
    await expect(GuestSession.open(vm2, { password: 'pw', shareDir: dir })).rejects.toThrow(
      /could not mount the 9p share \(status 32\): is 9p \(virtio\) available in its kernel\?/,
    );
  });

  it('gathers the twelve diagnostics docs/stages.md lists', () => {
    expect(GUEST_DIAGNOSTICS.map(([file]) => file)).toEqual([
      'os-release.txt',
      'uname.txt',
      'dpkg-l.txt',
      'systemctl-failed.txt',
      'journal.txt',
      'lsblk.txt',
      'fdisk.txt',
      'df.txt',
      'mounts.txt',
      'ip-addr.txt',
      'cmdline.txt',
      'systemd-analyze.txt',
    ]);
  });

  it('gathers the diagnostics in one batch into the output directory', async () => {
    const dir = share();
    const { vm, typed } = fakeGuest(dir, { password: 'pw' });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    const before = typed.length;
    const out = join(share(), 'diagnostics');
    await session.diagnostics(out, 30);
    expect(typed.length - before).toBe(1);
    for (const [file] of GUEST_DIAGNOSTICS) expect(existsSync(join(out, file)), file).toBe(true);
    expect(readFileSync(join(out, 'uname.txt'), 'utf8')).toMatch(/Linux/);
  });
});

describe('the session the guest stages share', () => {
  it('is opened once per VM and handed on; a closed one is replaced, a broken one refused', async () => {
    const dir = share();
    const { vm, typed } = fakeGuest(dir, { password: 'pw' });
    const first = await GuestSession.shared(vm, { password: 'pw', shareDir: dir });
    const logins = typed.filter((t) => t === 'root\n').length;
    expect(await GuestSession.shared(vm, { password: 'pw', shareDir: dir })).toBe(first);
    expect(typed.filter((t) => t === 'root\n').length).toBe(logins);
    expect(GuestSession.existing(vm)).toBe(first);

    // A command whose end never comes leaves the console in an unknown state: nobody may type on it again.
    const expect0 = vm.expect.bind(vm);
    vm.expect = async () => {
      throw new Error('timed out waiting for the end of the command');
    };
    await expect(first.run('true', { timeoutSeconds: 1 })).rejects.toThrow(/timed out/);
    vm.expect = expect0;
    expect(GuestSession.existing(vm)).toBeUndefined();
    await expect(GuestSession.shared(vm, { password: 'pw', shareDir: dir })).rejects.toThrow(/broke in an earlier stage/);
    await expect(first.run('true', { timeoutSeconds: 5 })).rejects.toThrow(/broke earlier/);
  });

  it('after a power-off a new VM gets a new session', async () => {
    const dir = share();
    const { vm } = fakeGuest(dir, { password: 'pw' });
    const s = await GuestSession.shared(vm, { password: 'pw', shareDir: dir });
    await s.powerOff(5);
    expect(GuestSession.existing(vm)).toBeUndefined();
  });

  it("follows a command's output while it runs, line by line", async () => {
    const dir = share();
    const { vm } = fakeGuest(dir, { password: 'pw' });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    const lines: string[] = [];
    const r = await session.run('echo one; echo two; printf three', { timeoutSeconds: 5, onOutput: (l) => lines.push(l) });
    expect(lines).toEqual(['one', 'two', 'three']);
    expect(r.stdout).toBe('one\ntwo\nthree');
  });
});

describe('following a file the guest appends to', () => {
  it('hands on complete lines as they come, decodes characters split between reads, never follows a link', () => {
    const dir = share();
    const file = join(dir, 'out');
    const lines: string[] = [];
    const f = new GuestFileFollower(file, (l) => lines.push(l));
    f.poll(); // not there yet
    const euro = Buffer.from('€');
    writeFileSync(file, Buffer.concat([Buffer.from('a\nb'), euro.subarray(0, 1)]));
    f.poll();
    expect(lines).toEqual(['a']);
    writeFileSync(file, Buffer.concat([Buffer.from('a\nb'), euro, Buffer.from('\nc')]));
    f.poll();
    expect(lines).toEqual(['a', 'b€']);
    f.poll(true);
    expect(lines).toEqual(['a', 'b€', 'c']);

    const secret = join(dir, 'secret');
    writeFileSync(secret, 'host only\n');
    symlinkSync(secret, join(dir, 'linked'));
    const seen: string[] = [];
    new GuestFileFollower(join(dir, 'linked'), (l) => seen.push(l)).poll(true);
    expect(seen).toEqual([]);
  });
});

describe('files from an untrusted guest', () => {
  it('are read only when regular, never through a link, and cut at the limit', () => {
    const dir = share();
    const secret = join(dir, 'host-secret');
    writeFileSync(secret, 'host only');
    symlinkSync(secret, join(dir, 'link'));
    expect(readGuestFile(join(dir, 'link'))).toBeUndefined();
    expect(readGuestFile(dir)).toBeUndefined();
    expect(readGuestFile(join(dir, 'missing'))).toBeUndefined();
    writeFileSync(join(dir, 'big'), 'x'.repeat(100));
    expect(readGuestFile(join(dir, 'big'), 10)?.toString()).toBe('xxxxxxxxxx\n[cut at 10 bytes of 100]\n');
    // What each refused file is, for the diagnosis; a FIFO is not opened for reading (that would wait for a writer).
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect(inspectGuestFile(join(dir, 'link'))).toEqual({ refused: 'a symbolic link' });
    expect(inspectGuestFile(join(dir, 'fifo'))).toEqual({ refused: 'a FIFO' });
    expect(inspectGuestFile(dir)).toEqual({ refused: 'a directory' });
    expect(inspectGuestFile('/dev/zero')).toEqual({ refused: 'a device' });
    expect(inspectGuestFile(join(dir, 'missing'))).toEqual({ missing: true });
    expect(inspectGuestFile(join(dir, 'big'))).toEqual({ data: Buffer.from('x'.repeat(100)) });
    // A huge sparse file costs what the limit costs.
    execFileSync('truncate', ['-s', '64G', join(dir, 'sparse')]);
    const sparse = inspectGuestFile(join(dir, 'sparse'), 1024);
    expect('data' in sparse && sparse.data.subarray(1024).toString()).toBe(`\n[cut at 1024 bytes of ${64 * 1024 ** 3}]\n`);
  });

  it('a link the guest planted where we put a file is replaced, never written through', async () => {
    const dir = share();
    const { vm } = fakeGuest(dir, { password: 'pw' });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    const target = join(share(), 'host-file');
    writeFileSync(target, 'untouched');
    symlinkSync(target, join(dir, 'goss.yaml'));
    session.put('goss.yaml', { content: 'file: {}\n' });
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    expect(lstatSync(join(dir, 'goss.yaml')).isFile()).toBe(true);
    // Names with a directory part are refused: the guest could have made that directory a link.
    expect(() => session.put('sub/goss.yaml', { content: '' })).toThrow(/not a plain file name/);
    expect(() => session.get('../etc/passwd')).toThrow(/not a plain file name/);
  });

  it('a link, FIFO or directory planted where the guest writes its output is not read, and is named', async () => {
    const dir = share();
    const { vm } = fakeGuest(dir, { password: 'pw' });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    const canary = join(share(), 'canary');
    writeFileSync(canary, 'canary text');
    // The command replaces its own stdout file with a link to a host file, its stderr file with a FIFO.
    const script = `echo out; n=$(ls run-*.sh | sort -V | tail -1); n=\${n%.sh}; rm $n.out $n.err; ln -s ${canary} $n.out; mkfifo $n.err`;
    const r = await session.run(script, { timeoutSeconds: 5 });
    expect(r).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    mkdirSync(join(dir, 'diag-uname.txt'));
    expect(session.get('diag-uname.txt')).toBeUndefined();
    expect(session.get('missing.txt')).toBeUndefined();
    expect(session.takeTampered().map((t) => t.replace(/^run-\d+/, 'run-N'))).toEqual([
      'run-N.out (a symbolic link)',
      'run-N.err (a FIFO)',
      'diag-uname.txt (a directory)',
    ]);
    expect(session.takeTampered()).toEqual([]);
    expect(readFileSync(canary, 'utf8')).toBe('canary text');
  });

  it("are the stage's test failure, naming the first five and keeping them all in the details", () => {
    expect(tamperError('lifecycle', [])).toBeUndefined();
    const planted = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => `lifecycle-out.${n} (a symbolic link)`);
    const e = tamperError('lifecycle', planted, { partial: true });
    expect(e).toMatchObject({ stage: 'lifecycle', kind: 'test', details: planted, partial: { partial: true } });
    expect(e?.message).toBe(
      "something in the guest planted 6 thing(s) in the share where the host reads the guest's output, none followed or read: " +
        `${planted.slice(0, 5).join(', ')}, …`,
    );
  });

  it("make a guest job's failure a test failure; without them it is an infrastructure error naming the apt proxy's trouble", async () => {
    const dir = share();
    const { vm } = fakeGuest(dir, { password: 'pw' });
    const session = await GuestSession.open(vm, { password: 'pw', shareDir: dir });
    const run = {
      exitCode: 3,
      stdout: `${Array.from({ length: 25 }, (_, i) => `line ${i}`).join('\n')}\n`,
      stderr: '',
      seconds: 1,
    };
    const e = guestJobError('lifecycle', { session, run, proxyTrouble: 'deb.example: ECONNREFUSED' }, 'apt could not install');
    expect(e).toMatchObject({ stage: 'lifecycle', kind: 'infrastructure' });
    expect(e.message).toBe('apt could not install (the apt proxy: deb.example: ECONNREFUSED)');
    expect(e.details).toEqual([...Array.from({ length: 19 }, (_, i) => `line ${i + 6}`), '']);
    symlinkSync('/etc/hostname', join(dir, 'lifecycle-out.steps'));
    expect(session.get('lifecycle-out.steps')).toBeUndefined();
    const planted = guestJobError('lifecycle', { session, run }, 'apt could not install');
    expect(planted).toMatchObject({ kind: 'test', details: ['lifecycle-out.steps (a symbolic link)'] });
  });
});
