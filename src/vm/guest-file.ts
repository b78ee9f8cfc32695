/**
 * Reading what an untrusted guest wrote into a directory the host shares with it (the test VM's 9p share, the
 * builder VM's job directory): regular files only, never through a symbolic link, up to a size.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, writeSync, type Stats } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** Each file the guest writes is read up to this size; the rest is cut and said so. */
export const MAX_GUEST_FILE = 16 * 1024 * 1024;

/** What a guest left under a name: its content (a regular file), nothing, or something else that was not read. */
export type GuestFile = { data: Buffer } | { missing: true } | { refused: string };

/** What a non-regular file is, in words for a diagnosis ("a symbolic link"). */
function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Looks at a file the guest wrote: only a regular file is read, never through a symbolic link (O_NOFOLLOW), at
 * most `max` bytes; a link, FIFO, directory or device is refused and named, never opened for reading through.
 */
export function inspectGuestFile(path: string, max = MAX_GUEST_FILE): GuestFile {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    // ELOOP is O_NOFOLLOW's answer to a link; whatever else it is, lstat says without following it.
    try {
      return { refused: kindOf(lstatSync(path)) };
    } catch {
      return { missing: true };
    }
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { refused: kindOf(st) };
    const size = Math.min(st.size, max);
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    const data = buf.subarray(0, got);
    return { data: st.size > max ? Buffer.concat([data, Buffer.from(`\n[cut at ${max} bytes of ${st.size}]\n`)]) : data };
  } finally {
    closeSync(fd);
  }
}

/** A regular file the guest wrote (inspectGuestFile), or undefined when it is missing or not a regular file. */
export function readGuestFile(path: string, max = MAX_GUEST_FILE): Buffer | undefined {
  const f = inspectGuestFile(path, max);
  return 'data' in f ? f.data : undefined;
}

/**
 * Copies a large file the guest wrote (a kernel, an initrd) to `dest`, which must not exist: only a regular file,
 * never through a link, refused when it is larger than `max`. Returns its size; throws with a reason otherwise.
 */
export function copyGuestFile(path: string, dest: string, max: number): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw new Error(`the guest left no file ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} from the guest is not a regular file`);
    if (st.size > max) throw new Error(`${path} from the guest has ${st.size} bytes, more than the ${max} allowed`);
    const out = openSync(dest, 'wx', 0o644);
    try {
      const buf = Buffer.alloc(1024 * 1024);
      let total = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, total);
        if (n === 0) break;
        total += n;
        // A file that grows while it is copied is cut at the size it had.
        if (total > max) throw new Error(`${path} from the guest grew past ${max} bytes while it was copied`);
        writeSync(out, buf, 0, n);
      }
      return total;
    } finally {
      closeSync(out);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Follows a file the guest appends to: each poll reads what was added (a regular file only, never through a
 * link) and hands on the complete lines; at most MAX_GUEST_FILE bytes in all.
 */
export class GuestFileFollower {
  private offset = 0;
  private rest = '';
  /** A character split across two polls is decoded whole. */
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly path: string,
    private readonly onLine: (line: string) => void,
  ) {}

  poll(final = false): void {
    if (this.offset < MAX_GUEST_FILE) {
      let fd: number | undefined;
      try {
        fd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        const st = fstatSync(fd);
        if (st.isFile() && st.size > this.offset) {
          const buf = Buffer.alloc(Math.min(st.size, MAX_GUEST_FILE) - this.offset);
          const got = readSync(fd, buf, 0, buf.length, this.offset);
          this.offset += got;
          this.rest += this.decoder.write(buf.subarray(0, got));
        }
      } catch {
        // not there yet, or not a regular file: nothing to follow
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    const lines = this.rest.split(/\r?\n/);
    this.rest = lines.pop() ?? '';
    if (final && this.rest) {
      lines.push(this.rest);
      this.rest = '';
    }
    for (const l of lines) this.onLine(l.slice(0, 4096));
  }
}
