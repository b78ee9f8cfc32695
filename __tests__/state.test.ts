import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mountsBelow, processStartTime, ResourceTracker } from '../src/state.js';

const dir = mkdtempSync(join(tmpdir(), 'dvc-state-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

describe('ResourceTracker', () => {
  it('persists every change, so that another process (the post step) can release what is left', () => {
    const file = join(dir, 'a.json');
    const t = new ResourceTracker(file);
    const id = t.add({ kind: 'dir', name: 'scratch', path: join(dir, 'x') });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveLength(1);
    expect(new ResourceTracker(file).list()).toEqual([{ kind: 'dir', name: 'scratch', path: join(dir, 'x') }]);
    t.remove(id);
    expect(new ResourceTracker(file).list()).toEqual([]);
    t.dispose();
    expect(existsSync(file)).toBe(false);
  });

  it('stops a whole process group, and never a reused pid', async () => {
    const child = spawn('sh', ['-c', 'sleep 300 & sleep 300'], { detached: true, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    const pid = child.pid ?? 0;
    const t = new ResourceTracker(join(dir, 'b.json'));
    t.add({ kind: 'process', name: 'sleeper', pid, startTime: processStartTime(pid) ?? '' });
    t.add({ kind: 'process', name: 'impostor', pid: process.pid, startTime: 'not-my-start-time' });
    const done = t.releaseAll();
    expect(done).toEqual([`stopped sleeper (pid ${pid})`]);
    await new Promise((r) => setTimeout(r, 300));
    // Killed members may linger as zombies until their parent reaps them; none may still be running.
    const running = execFileSync('ps', ['-o', 'stat=', '-g', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((stat) => stat.trim() && !stat.startsWith('Z'));
    expect(running).toEqual([]);
    expect(t.list()).toEqual([]);
  });

  it.runIf(isRoot)('unmounts what a killed chroot left mounted below a directory, then removes it', () => {
    const chroot = join(dir, 'rootfs');
    mkdirSync(join(chroot, 'proc'), { recursive: true });
    mkdirSync(join(chroot, 'dev', 'shm'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'none', join(chroot, 'dev', 'shm')]);
    execFileSync('mount', ['-t', 'proc', 'proc', join(chroot, 'proc')]);
    expect(mountsBelow(chroot)).toEqual([join(chroot, 'dev', 'shm'), join(chroot, 'proc')].sort((a, b) => b.length - a.length));
    const t = new ResourceTracker(join(dir, 'c.json'));
    t.add({ kind: 'dir', name: 'install', path: chroot });
    expect(t.releaseAll()).toEqual([`removed install ${chroot} (after unmounting 2 mounts below it)`]);
    expect(existsSync(chroot)).toBe(false);
    expect(mountsBelow(chroot)).toEqual([]);
  });
});
