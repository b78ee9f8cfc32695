import type { Config } from './config.js';
import type { Deps } from './context.js';
import { EXIT } from './errors.js';

/** mode: report: aggregates the matrix cells' result.json artifacts (filled in by the publish work). */
export async function runReport(_config: Config, deps: Deps): Promise<number> {
  deps.reporter.error('mode: report is not implemented yet');
  return EXIT.infrastructure;
}
