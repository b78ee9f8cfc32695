import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Exec, StageLog } from '../host/exec.js';

export type Qcow2Compression = 'zstd' | 'zlib';

export interface ConvertedImage {
  /** The compressed qcow2 file. */
  path: string;
  /** Apparent size of the raw image (its virtual disk size). */
  rawBytes: number;
  /** Blocks the sparse raw image really occupies. */
  rawAllocatedBytes: number;
  qcow2Bytes: number;
  compression: Qcow2Compression;
  seconds: number;
}

interface ConvertOptions {
  stage: string;
  /** Scratch directory for the capability probe. */
  workDir: string;
  log?: StageLog;
  signal?: AbortSignal;
}

/**
 * zstd when this qemu-img can write it (QEMU 5.1+ built with zstd), else zlib, which every qemu-img
 * with qcow2 compression understands. Asked by creating a tiny image: `--help` does not list
 * compression types, and version numbers say nothing about how the binary was built.
 */
export async function qcow2Compression(exec: Exec, options: ConvertOptions): Promise<Qcow2Compression> {
  mkdirSync(options.workDir, { recursive: true });
  const probe = join(options.workDir, 'zstd-probe.qcow2');
  try {
    const { exitCode } = await exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', probe, '1M'], {
      stage: options.stage,
      log: options.log,
      check: false,
    });
    return exitCode === 0 ? 'zstd' : 'zlib';
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Converts the raw image into a compressed qcow2 (what users download and boot with `-hda`). */
export async function convertToQcow2(
  exec: Exec,
  rawImage: string,
  target: string,
  options: ConvertOptions,
): Promise<ConvertedImage> {
  const compression = await qcow2Compression(exec, options);
  const started = performance.now();
  rmSync(target, { force: true });
  await exec.run(
    [
      'qemu-img',
      'convert',
      '-f',
      'raw',
      '-O',
      'qcow2',
      '-c',
      // Without -o, qemu-img picks zlib; older builds do not know the option at all.
      ...(compression === 'zstd' ? ['-o', 'compression_type=zstd'] : []),
      rawImage,
      target,
    ],
    { stage: options.stage, log: options.log, signal: options.signal, timeoutSeconds: 3600 },
  );
  const raw = statSync(rawImage);
  return {
    path: target,
    rawBytes: raw.size,
    rawAllocatedBytes: raw.blocks * 512,
    qcow2Bytes: statSync(target).size,
    compression,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
}
