import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ppmToPng } from '../src/vm/png.js';

interface DecodedPng {
  width: number;
  height: number;
  bitDepth: number;
  colourType: number;
  /** RGB triples, row by row. */
  pixels: Buffer;
  chunks: string[];
}

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A minimal PNG reader for what ppmToPng writes: 8-bit truecolour, filter type 0 only. */
function decodePng(png: Buffer): DecodedPng {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let pos = 8;
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | undefined;
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.subarray(pos + 4, pos + 8).toString('latin1');
    const data = png.subarray(pos + 8, pos + 8 + len);
    expect(png.readUInt32BE(pos + 8 + len), `CRC of ${type}`).toBe(crc32(png.subarray(pos + 4, pos + 8 + len)));
    chunks.push(type);
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  expect(pos).toBe(png.length);
  if (!ihdr) throw new Error('no IHDR');
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe((width * 3 + 1) * height);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    expect(raw[row], `filter type of row ${y}`).toBe(0);
    raw.copy(pixels, y * width * 3, row + 1, row + 1 + width * 3);
  }
  return { width, height, bitDepth: ihdr[8], colourType: ihdr[9], pixels, chunks };
}

function ppm(width: number, height: number, pixels: number[], header = `P6\n${width} ${height}\n255\n`): Buffer {
  return Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from(pixels)]);
}

describe('ppmToPng', () => {
  it('converts a 3x2 PPM pixel for pixel', () => {
    // A red, green, blue row and a black, white, grey row: any row or channel mix-up shows.
    const pixels = [255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 128, 128, 128];
    const png = decodePng(ppmToPng(ppm(3, 2, pixels)));
    expect(png).toMatchObject({ width: 3, height: 2, bitDepth: 8, colourType: 2, chunks: ['IHDR', 'IDAT', 'IEND'] });
    expect([...png.pixels]).toEqual(pixels);
  });

  it('accepts comments and any whitespace in the header (as QEMU and netpbm write it)', () => {
    const pixels = [1, 2, 3, 4, 5, 6];
    const png = decodePng(ppmToPng(ppm(2, 1, pixels, 'P6\n# CREATOR: test\n2 1\n255\n')));
    expect([png.width, png.height]).toEqual([2, 1]);
    expect([...png.pixels]).toEqual(pixels);
    expect([...decodePng(ppmToPng(ppm(2, 1, pixels, 'P6 2 1 255 '))).pixels]).toEqual(pixels);
  });

  it('a pixel value of 10 (a newline byte) right after the header is data, not whitespace', () => {
    const pixels = [10, 10, 10, 32, 32, 32];
    expect([...decodePng(ppmToPng(ppm(2, 1, pixels))).pixels]).toEqual(pixels);
  });

  it.each([
    { name: 'ASCII PPM (P3)', data: Buffer.from('P3\n1 1\n255\n0 0 0\n'), error: /not a binary PPM/ },
    { name: '16-bit PPM', data: ppm(1, 1, [0, 0, 0, 0, 0, 0], 'P6\n1 1\n65535\n'), error: /not a binary PPM with maxval 255/ },
    { name: 'PGM', data: Buffer.from('P5\n1 1\n255\n\0'), error: /not a binary PPM/ },
    { name: 'truncated pixels', data: ppm(2, 2, [1, 2, 3]), error: /truncated PPM/ },
  ])('rejects $name', ({ data, error }) => {
    expect(() => ppmToPng(data)).toThrow(error);
  });

  it('converts a real QEMU screendump pixel for pixel (the VGA console of a boot stuck in the initramfs shell)', () => {
    // Recorded with the monitor's screendump; fixtures/console/tty0-last.png is this conversion, for people to look at.
    const ppmBytes = gunzipSync(readFileSync(join(import.meta.dirname, 'fixtures', 'console', 'tty0-last.ppm.gz')));
    expect(ppmBytes.subarray(0, 15).toString('latin1')).toBe('P6\n720 400\n255\n');
    const png = decodePng(ppmToPng(ppmBytes));
    expect([png.width, png.height]).toEqual([720, 400]);
    expect(png.pixels.equals(ppmBytes.subarray(15))).toBe(true);
    // Text mode: mostly black, some light grey text.
    const lit = png.pixels.filter((v, i) => i % 3 === 0 && v > 128).length;
    expect(lit).toBeGreaterThan(1000);
    expect(lit / (png.width * png.height)).toBeLessThan(0.2);
  });
});
