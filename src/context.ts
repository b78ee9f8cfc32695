// The contract between the pipeline and its stages. Result types live in results.ts, side effects in deps.ts.
import type { Config } from './config.js';
import type { OutputPaths } from './paths.js';
import type { CacheRecord } from './publish/caches.js';
import type { StageIo } from './deps.js';
import type { Results, RunSoFar, StageName } from './results.js';
export type { Deps, StageIo } from './deps.js';
export type { Results, RunSoFar, StageName, StageRecord, StageStatus } from './results.js';

/** What a stage gets: its StageIo (deps, log, progress, signal) and the run's data. */
export interface StageContext extends StageIo {
  readonly config: Config;
  readonly results: Readonly<Results>;
  readonly paths: OutputPaths;
  /** What restoreCaches found before the first stage; publish saves the caches that were not an exact hit. */
  readonly restoredCaches?: readonly CacheRecord[];
  /** The verdict of the stages before this one, as the pipeline counts it; absent outside the pipeline. */
  readonly runSoFar?: RunSoFar;
}

export interface Stage<K extends StageName> {
  readonly name: K;
  /**
   * Works in the booted VM through its shared GuestSession. After the last such stage that runs, the pipeline
   * powers the guest off (still in that stage's log and time).
   */
  readonly usesGuest?: boolean;
  /** undefined when the stage runs; otherwise why it is skipped. */
  skipReason(config: Config, results: Readonly<Results>): string | undefined;
  run(ctx: StageContext): Promise<NonNullable<Results[K]>>;
}

/** Whether the run's VMs use KVM: the accel stage's verdict, TCG when it has not run. */
export function underKvm(results: Readonly<Results>): boolean {
  return results.accel?.accel === 'kvm';
}
