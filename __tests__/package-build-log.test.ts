import { describe, expect, it } from 'vitest';
import { BuildLogWatcher, parseControlFields } from '../src/package/build-log.js';

function watcher(): { w: BuildLogWatcher; progress: string[]; clock: { t: number } } {
  const progress: string[] = [];
  const clock = { t: 0 };
  return {
    w: new BuildLogWatcher(
      (m) => progress.push(m),
      () => clock.t,
      15_000,
    ),
    progress,
    clock,
  };
}

describe('BuildLogWatcher', () => {
  it('relays milestones and dpkg-buildpackage lines, and throttles apt "Setting up" lines', () => {
    const { w, progress, clock } = watcher();
    w.onLine('debian-vm-ci: installing build dependencies');
    clock.t = 20_000;
    w.onLine('Setting up libxml2:amd64 (2.9.14) ...');
    clock.t = 21_000;
    w.onLine('Setting up debhelper (13.24) ...');
    w.onLine('dpkg-buildpackage: info: source package hello-dvc');
    w.onLine('   dh_builddeb');
    expect(progress).toEqual([
      'installing build dependencies',
      '1 packages set up so far (Setting up libxml2:amd64 (2.9.14))',
      'dpkg-buildpackage: info: source package hello-dvc',
    ]);
    expect(w.failure).toBeUndefined();
  });

  it('says it is still working after a quiet spell only', () => {
    const { w, progress, clock } = watcher();
    w.onLine('compiling');
    clock.t = 10_000;
    w.heartbeat(30_000, 10);
    clock.t = 31_000;
    w.heartbeat(30_000, 31);
    expect(progress).toEqual(['still working (31s): compiling']);
  });

  it("records the failing step and keeps the 30 lines up to it, without mmdebstrap's clean-up after it", () => {
    const { w } = watcher();
    for (let i = 1; i <= 50; i++) w.onLine(`build line ${i}`);
    w.onLine('debian-vm-ci: FAILED: dpkg-buildpackage exited with status 2');
    w.onLine('E: setup failed: E: command failed: chroot "$1" sh /build/build.sh');
    w.onLine('I: removing tempdir /tmp/mmdebstrap.x...');
    expect(w.failure).toBe('dpkg-buildpackage exited with status 2');
    const details = w.failureDetails();
    expect(details).toHaveLength(30);
    expect(details[0]).toBe('build line 22');
    expect(details.at(-1)).toBe('debian-vm-ci: FAILED: dpkg-buildpackage exited with status 2');
  });

  it('falls back to the last lines when mmdebstrap itself failed', () => {
    const { w } = watcher();
    w.onLine('E: cannot find a working mirror');
    expect(w.failure).toBeUndefined();
    expect(w.failureDetails()).toEqual(['E: cannot find a working mirror']);
  });
});

describe('parseControlFields', () => {
  it('reads a .changes file, with continuation lines', () => {
    const fields = parseControlFields(
      'Format: 1.8\nSource: hello-dvc\nBinary: hello-dvc\nVersion: 1.0.0+autobuild42\nDescription:\n hello-dvc - example\nFiles:\n abc 1804 utils optional hello-dvc_1.0.0_all.deb\n',
    );
    expect(fields.Source).toBe('hello-dvc');
    expect(fields.Version).toBe('1.0.0+autobuild42');
    expect(fields.Files).toBe('\nabc 1804 utils optional hello-dvc_1.0.0_all.deb');
  });
});
