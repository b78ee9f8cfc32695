import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export interface InputMetadata {
  readonly name: string;
  readonly description: string;
  readonly default: string;
}

export interface ActionMetadata {
  readonly inputs: readonly InputMetadata[];
  readonly outputs: readonly { name: string; description: string }[];
}

/** The project root: the nearest directory above this module that holds action.yml (src/ in tests, dist/x/ when bundled). */
export function projectRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'action.yml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`action.yml not found above ${from}`);
    dir = parent;
  }
}

let cached: ActionMetadata | undefined;

/** action.yml is the single source of input names, descriptions and defaults (CLI help, CLI defaults, README table). */
export function actionMetadata(path = join(projectRoot(), 'action.yml')): ActionMetadata {
  if (cached) return cached;
  const doc = parse(readFileSync(path, 'utf8')) as {
    inputs: Record<string, { description: string; default?: string }>;
    outputs: Record<string, { description: string }>;
  };
  cached = {
    inputs: Object.entries(doc.inputs).map(([name, v]) => ({
      name,
      description: v.description,
      default: String(v.default ?? ''),
    })),
    outputs: Object.entries(doc.outputs).map(([name, v]) => ({ name, description: v.description })),
  };
  return cached;
}
