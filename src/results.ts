/**
 * What each stage hands on to the ones after it, and what a run reports: types only, below every stage,
 * so the stages, the pipeline and the reports depend on this module and it on none of them.
 */
import type { AutopkgtestTest } from './autopkgtest/summary.js';
import type { FailureKind } from './errors.js';
import type { LifecycleStep } from './lifecycle/report.js';
import type { MmdebstrapMode } from './host/userns.js';
import type { LintianTag } from './package/lintian.js';
import type { ArtifactRecord } from './publish/artifacts.js';
import type { CacheRecord } from './publish/caches.js';
import type { ConvertedImage } from './publish/image.js';
import type { SeverityCounts } from './reports/shellcheck.js';
import type { GuestVm } from './vm/guest.js';

export interface KvmProbe {
  usable: boolean;
  /** Why (not), in QEMU's or our words. */
  reason: string;
  seconds: number;
  /** The probe's memory work under KVM and, for comparison, under TCG. */
  kvmWorkSeconds?: number;
  tcgWorkSeconds?: number;
}

export interface AccelResult {
  summary: string;
  accel: 'kvm' | 'tcg';
  /** Set when KVM was wanted but not usable: shown as a warning annotation and in the summary. */
  warning?: string;
  probe?: KvmProbe;
}

export interface LintResult {
  /** "12 scripts, 3 findings: 1 error, 2 warnings" */
  summary: string;
  /** The scripts checked, relative to the repository root, sorted. */
  files: string[];
  findings: SeverityCounts & { total: number };
  /** Findings at or above lint-fail-on: the run fails when this is not 0. */
  failing: number;
  /** The summary table, also written to lint/summary.md. */
  markdown: string;
  /** undefined when there was nothing to lint, so shellcheck was not needed. */
  shellcheckVersion: string | undefined;
  /** Absolute paths of the report files. */
  reports: {
    /** shellcheck's json1 (merged over invocations, `file` relative to the repository root). */
    json: string;
    sarif: string;
    markdown: string;
  };
}

export interface BuildEnvCache {
  /** The environment came from a tarball of an earlier run. */
  hit: boolean;
  /** release-arch-week-hash, see buildEnvKey. */
  key: string;
  /** The tarball the build unpacked. */
  path: string;
}

export interface PackageResult {
  summary: string;
  /** Absolute paths of the built .deb files, in packages/. */
  debs: string[];
  /** Absolute path of the .changes file in packages/. */
  changes: string;
  /** Absolute path of the .buildinfo file in packages/. */
  buildinfo: string | undefined;
  sourceName: string;
  /** The version built, with package-version-suffix when given. */
  version: string;
  release: string;
  architecture: string;
  seconds: number;
  cache: BuildEnvCache;
  /** How mmdebstrap ran and why (user namespaces, or root mode through sudo). */
  mmdebstrap: MmdebstrapMode;
  /** Present when lintian ran. */
  lintian?: { tags: LintianTag[]; failing: number; report: string };
}

/** How the image boots: from its own boot loader, or with a kernel QEMU loads (mmdebstrap images). */
export type BootSpec = { kind: 'disk' } | { kind: 'direct'; kernel: string; initrd: string; append: string };

export interface InstallResult {
  summary: string;
  /** The raw disk image (image/qemu.img). */
  image: string;
  boot: BootSpec;
  installer: string;
  /** Where the installer ran: host (mmdebstrap), or the builder's backend. */
  isolation: string;
  aptCache: { hits: number; misses: number; bytesFromCache: number; bytesFromUpstream: number };
}

export interface BootResult {
  summary: string;
  vm: GuestVm;
  /** Seconds from QEMU's start to the login prompt. */
  bootSeconds: number;
  /** Host directory shared with the guest over 9p (tag `dvc`), for validate. */
  shareDir: string;
  /** Boot milestones with their time since QEMU started. */
  milestones: { milestone: string; seconds: number }[];
}

export interface ValidateResult {
  summary: string;
  tests: number;
  failures: number;
  skipped: number;
  /** goss's report as Markdown, failures first. */
  markdown: string;
  goss: { version: string; source: string };
  attempts: number;
}

export interface AutopkgtestResult {
  summary: string;
  tests: AutopkgtestTest[];
  passed: number;
  failed: number;
  skipped: number;
  flaky: number;
  /** autopkgtest's exit status (see autopkgtestExit). */
  exitCode: number;
  autopkgtestVersion: string;
  /** The per-test table, also in autopkgtest/autopkgtest.md. */
  markdown: string;
  /** Time of the run in the guest: setting autopkgtest up and the tests. */
  seconds: number;
}

export interface LifecycleResult {
  summary: string;
  steps: LifecycleStep[];
  /** The first MAX_LISTED paths; lifecycle/leftovers.txt has them all. */
  leftovers: string[];
  leftoverCount: number;
  missing: string[];
  missingCount: number;
  scriptErrors: string[];
  markdown: string;
  seconds: number;
}

export interface UpgradeResult {
  summary: string;
  from: string;
  to: string;
  /** Installed packages whose version changed, that are new, that are gone (dpkg-query before and after). */
  upgraded: number;
  added: number;
  removed: number;
  /** The newest installed kernel after the upgrade: the one the second boot starts. */
  kernel: string;
  /** The upgrade in the guest (apt), the second boot to its login prompt. */
  aptSeconds: number;
  bootSeconds?: number;
  /** goss after the upgrade (upgrade/goss/). */
  goss?: ValidateResult;
  /** The steps' table and goss's after the upgrade, also in upgrade/upgrade.md. */
  markdown?: string;
}

export interface PublishResult {
  summary: string;
  artifacts: ArtifactRecord[];
  /** The compressed qcow2, when upload-image asked for it and this run installed an image. */
  image?: ConvertedImage;
  /** Restore records (from before the first stage) followed by this stage's save records. */
  caches: CacheRecord[];
  /** Why no cache was restored or saved, when none was. */
  cachesOff?: string;
}

export type StageStatus = 'passed' | 'failed' | 'skipped' | 'not-run';

export interface StageRecord {
  name: StageName;
  status: StageStatus;
  seconds: number;
  /** One line: what the stage found or did. */
  summary?: string;
  error?: string;
  failureKind?: FailureKind;
  details?: readonly string[];
}

/** How the run went in the stages before the current one: publish decides on it (upload-image: failure). */
export interface RunSoFar {
  status: 'passed' | 'failed';
  /** The install stage ran (passed or failed): its image, if any, is this run's. */
  installRan: boolean;
}

/** What each stage hands on to the ones after it. */
export interface Results {
  accel?: AccelResult;
  lint?: LintResult;
  package?: PackageResult;
  install?: InstallResult;
  boot?: BootResult;
  validate?: ValidateResult;
  lifecycle?: LifecycleResult;
  autopkgtest?: AutopkgtestResult;
  upgrade?: UpgradeResult;
  publish?: PublishResult;
}

export interface RunResult {
  status: 'passed' | 'failed';
  exitCode: number;
  failureKind?: FailureKind;
  /** The first failing stage's error. */
  error?: string;
  startedAt: string;
  seconds: number;
  accel?: 'kvm' | 'tcg';
  accelWarning?: string;
  bootSeconds?: number;
  goss?: { tests: number; failures: number; skipped: number };
  autopkgtest?: { tests: number; passed: number; failed: number; skipped: number; flaky: number };
  lifecycle?: { passed: boolean; steps: string[]; leftovers: number; missing: number; scriptErrors: number };
  upgrade?: {
    from: string;
    to: string;
    kernel: string;
    upgraded: number;
    bootSeconds?: number;
    goss?: { tests: number; failures: number; skipped: number };
  };
  lint?: { files: number; findings: number; errors: number; warnings: number; info: number; style: number };
  lintian?: { tags: number; errors: number; warnings: number };
  /** Markdown tables for the summary: goss results (failures first) and lint findings per file. */
  tables?: { goss?: string; lifecycle?: string; autopkgtest?: string; upgrade?: string; lint?: string };
  image?: string;
  /** Artifacts, the qcow2 image and caches: what publish did. */
  publish?: Omit<PublishResult, 'summary'>;
  stages: StageRecord[];
  config: Record<string, unknown>;
}

export type StageName = keyof Results;
