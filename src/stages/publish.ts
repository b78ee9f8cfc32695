import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { UploadPolicy } from '../config.js';
import { formatBytes } from '../input-values.js';
import type { RunSoFar, Stage, StageContext } from '../context.js';
import type { PublishResult } from '../results.js';
import { StageError } from '../errors.js';
import { publishArtifact, reportFiles, type ArtifactRecord } from '../publish/artifacts.js';
import { cachesOffReason, saveCaches } from '../publish/caches.js';
import { convertToQcow2, type ConvertedImage } from '../publish/image.js';
import { cellName, imageArtifactName, reportsArtifactName } from '../publish/naming.js';

export function imageWanted(policy: UploadPolicy, status: RunSoFar['status']): boolean {
  return policy === 'always' || (policy === 'failure' && status === 'failed');
}

/** This run's image only: a raw image an earlier run left in the output directory is not this run's evidence. */
function thisRunsImage(ctx: StageContext, run: RunSoFar): string | undefined {
  const image = ctx.results.install?.image ?? (run.installRan ? ctx.paths.imageFile : undefined);
  return image && existsSync(image) ? image : undefined;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function publishImage(
  ctx: StageContext,
  rawImage: string,
  problems: string[],
): Promise<{ image?: ConvertedImage; artifact?: ArtifactRecord }> {
  const { config, deps, paths } = ctx;
  // The guest must be off: QEMU holds a write lock on the image, and a running system's disk is not consistent.
  await ctx.results.boot?.vm.shutdown('publish: converting the image', { graceful: true, deadlineSeconds: 30 });
  let image: ConvertedImage;
  try {
    ctx.progress(`converting ${rawImage} to a compressed qcow2`);
    image = await convertToQcow2(deps.exec, rawImage, join(paths.image, `${cellName(config)}.qcow2`), {
      stage: 'publish',
      workDir: paths.work,
      log: ctx.log,
      signal: ctx.signal,
    });
    ctx.progress(
      `image: raw ${formatBytes(image.rawBytes)} (${formatBytes(image.rawAllocatedBytes)} allocated) -> qcow2 ${formatBytes(
        image.qcow2Bytes,
      )} with ${image.compression} in ${image.seconds}s`,
    );
  } catch (error) {
    problems.push(`image conversion: ${message(error)}`);
    return {};
  }
  try {
    // qcow2 clusters are compressed already: deflating them again costs minutes and saves nothing.
    const artifact = await publishArtifact(deps, imageArtifactName(config), [image.path], paths.image, {
      retentionDays: config.retentionDays,
      compressionLevel: 0,
    });
    return { image, artifact };
  } catch (error) {
    problems.push(`image artifact: ${message(error)}`);
    return { image };
  }
}

function summarize(result: Omit<PublishResult, 'summary'>, uploaded: boolean): string {
  const parts: string[] = [];
  parts.push(
    uploaded
      ? `${result.artifacts.length} artifact${result.artifacts.length === 1 ? '' : 's'} uploaded`
      : `artifacts kept in ${result.artifacts[0]?.rootDirectory ?? 'the output directory'} (not on GitHub)`,
  );
  if (result.image) {
    parts.push(`image ${formatBytes(result.image.rawAllocatedBytes)} -> ${formatBytes(result.image.qcow2Bytes)} qcow2`);
  }
  const saved = result.caches.filter((c) => c.phase === 'save' && c.outcome === 'saved').map((c) => c.name);
  const hits = result.caches.filter((c) => c.phase === 'restore' && c.outcome !== 'miss' && c.outcome !== 'failed');
  if (result.cachesOff) parts.push(`caches off (${result.cachesOff})`);
  else parts.push(`caches: ${hits.length} restored, ${saved.length ? `saved ${saved.join(', ')}` : 'none saved'}`);
  return parts.join('; ');
}

export const publish: Stage<'publish'> = {
  name: 'publish',
  skipReason: () => undefined,
  async run(ctx) {
    const { config, deps, paths } = ctx;
    // Without the pipeline's verdict nothing says the run passed.
    const run: RunSoFar = ctx.runSoFar ?? { status: 'failed', installRan: false };
    const problems: string[] = [];
    const artifacts: ArtifactRecord[] = [];

    // This stage's own log is still being written; the output directory keeps the whole of it.
    const reports = reportFiles(paths).filter((file) => file !== ctx.log.path);
    try {
      artifacts.push(
        await publishArtifact(deps, reportsArtifactName(config), reports, paths.root, { retentionDays: config.retentionDays }),
      );
    } catch (error) {
      problems.push(`reports artifact: ${message(error)}`);
    }

    let image: ConvertedImage | undefined;
    const rawImage = thisRunsImage(ctx, run);
    if (!imageWanted(config.uploadImage, run.status)) {
      ctx.progress(`image: not published (upload-image: ${config.uploadImage}, run ${run.status})`);
    } else if (!rawImage) {
      ctx.progress('image: this run installed no image');
    } else if (ctx.signal.aborted) {
      ctx.progress('image: not converted: the run was cancelled');
    } else {
      const published = await publishImage(ctx, rawImage, problems);
      image = published.image;
      if (published.artifact) artifacts.push(published.artifact);
    }

    const restored = ctx.restoredCaches ?? [];
    const cachesOff = cachesOffReason(config, deps);
    const saved = ctx.signal.aborted ? [] : await saveCaches(config, deps, restored);
    const partial: Omit<PublishResult, 'summary'> = { artifacts, image, caches: [...restored, ...saved], cachesOff };
    const result: PublishResult = { summary: summarize(partial, !!deps.github), ...partial };
    if (problems.length) {
      throw new StageError('publish', problems.join('; '), 'infrastructure', [], result);
    }
    return result;
  },
};
