import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HostExec } from '../src/host/exec.js';
import { convertToQcow2, qcow2Compression } from '../src/publish/image.js';
import { ResourceTracker } from '../src/state.js';
import { RecordingReporter } from './support/github-standins/fakes.js';
import { tempDir } from './support/github-standins/context.js';

// Real qemu-img (a host package of this project): the conversion is only worth testing for real.
const exec = new HostExec(new RecordingReporter(), new ResourceTracker(join(tempDir('res'), 'r.json')));

/** A sparse 64 MiB raw disk with 4 MiB of incompressible data and 4 MiB of text in it. */
function rawImage(dir: string): string {
  const path = join(dir, 'qemu.img');
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', path, '64M']);
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(4 * 1024 * 1024), 0, 4 * 1024 * 1024, 8 * 1024 * 1024);
  const text = Buffer.from('Debian GNU/Linux '.repeat(256 * 1024).slice(0, 4 * 1024 * 1024));
  writeSync(fd, text, 0, text.length, 32 * 1024 * 1024);
  closeSync(fd);
  return path;
}

describe('qcow2 conversion', () => {
  it('uses zstd when this qemu-img can write it', async () => {
    // Debian's qemu-utils (7.2 in bookworm) is built with zstd.
    expect(await qcow2Compression(exec, { stage: 'publish', workDir: tempDir('probe') })).toBe('zstd');
  });

  it('writes a compressed qcow2 with the same disk content and reports both sizes', async () => {
    const dir = tempDir('image');
    const raw = rawImage(dir);
    const converted = await convertToQcow2(exec, raw, join(dir, 'cell.qcow2'), { stage: 'publish', workDir: join(dir, 'work') });
    expect(converted).toMatchObject({ path: join(dir, 'cell.qcow2'), rawBytes: 64 * 1024 * 1024, compression: 'zstd' });
    // The random 4 MiB cannot shrink; the text must, and the holes cost nothing.
    expect(converted.qcow2Bytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(converted.qcow2Bytes).toBeLessThan(converted.rawAllocatedBytes);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output', 'json', converted.path], { encoding: 'utf8' })) as {
      format: string;
      'format-specific': { data: { 'compression-type': string } };
    };
    expect(info.format).toBe('qcow2');
    expect(info['format-specific'].data['compression-type']).toBe('zstd');
    // Exit status 0: identical guest-visible content.
    execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, converted.path]);
  });
});
