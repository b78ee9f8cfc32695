import { formatBytes } from '../input-values.js';
import type { PublishResult } from '../results.js';
import type { CacheRecord } from './caches.js';
import { tableCell } from '../reports/markdown.js';

function restoreText(record: CacheRecord | undefined): string {
  if (!record) return '';
  switch (record.outcome) {
    case 'hit':
      return '✅ hit';
    case 'partial':
      return `♻️ older entry \`${record.matchedKey ?? ''}\``;
    case 'miss':
      return 'miss';
    default:
      return `⚠️ ${record.outcome}${record.note ? `: ${tableCell(record.note)}` : ''}`;
  }
}

function saveText(record: CacheRecord | undefined): string {
  if (!record) return '';
  if (record.outcome === 'saved') return `💾 saved in ${record.seconds}s`;
  return `${record.outcome === 'failed' ? '⚠️ ' : ''}${record.outcome}${record.note ? ` (${tableCell(record.note)})` : ''}`;
}

/** The artifacts, image and caches part of the job summary (the lead's summary places it below the stage table). */
export function renderPublishMarkdown(result: PublishResult): string {
  const lines: string[] = [];
  if (result.artifacts.length) {
    const local = result.artifacts.every((a) => a.id === undefined);
    lines.push('### Artifacts', '');
    if (local)
      lines.push(`Not uploaded (no GitHub artifact service); the files are in \`${result.artifacts[0].rootDirectory}\`.`, '');
    lines.push('| artifact | files | size |', '| --- | ---: | ---: |');
    for (const a of result.artifacts) {
      lines.push(`| ${a.url ? `[${a.name}](${a.url})` : `\`${a.name}\``} | ${a.files} | ${formatBytes(a.size)} |`);
    }
    lines.push('');
  }
  if (result.image) {
    const i = result.image;
    lines.push(
      `Image: raw ${formatBytes(i.rawBytes)} (${formatBytes(i.rawAllocatedBytes)} allocated) → qcow2 **${formatBytes(
        i.qcow2Bytes,
      )}** (${i.compression}, ${i.seconds}s).`,
      '',
    );
  }
  if (result.cachesOff) {
    lines.push(`Caches: off (${result.cachesOff}).`, '');
  } else if (result.caches.length) {
    lines.push('### Caches', '', '| cache | key | restore | save | size |', '| --- | --- | --- | --- | ---: |');
    const names = [...new Set(result.caches.map((c) => c.name))];
    for (const name of names) {
      const restore = result.caches.find((c) => c.name === name && c.phase === 'restore');
      const save = result.caches.find((c) => c.name === name && c.phase === 'save');
      const bytes = Math.max(restore?.bytes ?? 0, save?.bytes ?? 0);
      const key = (save ?? restore)?.key ?? '';
      lines.push(`| ${name} | \`${key}\` | ${restoreText(restore)} | ${saveText(save)} | ${bytes ? formatBytes(bytes) : ''} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
