import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StageContext } from '../context.js';

/** A scratch directory registered for cleanup, so that a killed run leaves none behind. */
export function scratchDir(ctx: StageContext, name: string): { path: string; release(): void } {
  const path = mkdtempSync(join(tmpdir(), `dvc-${name}-`));
  const id = ctx.deps.resources.add({ kind: 'dir', name, path });
  return {
    path,
    release() {
      rmSync(path, { recursive: true, force: true });
      ctx.deps.resources.remove(id);
    },
  };
}
