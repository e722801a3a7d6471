/**
 * Reading an input into memory under the byte limit: a path (fs.stat first, then one read), a Buffer / Uint8Array
 * (wrapped, never copied) or a stream (read chunk by chunk, destroyed as soon as the cap is passed).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import { MatchdError, type ErrorCode } from '../errors.ts';
import type { ImageInput } from '../image.ts';

export interface ByteLimits {
  maxBytes: number;
}

/** Sharp's own message, without its stack. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The input as messages name it: a quoted path, "(buffer of N bytes)" or "(stream of N bytes)". */
export class Source {
  constructor(readonly label: string) {}

  fail(code: ErrorCode, what: string, details: Record<string, unknown> = {}): MatchdError {
    return new MatchdError(code, `image ${this.label}: ${what}`, { input: this.label, ...details });
  }
}

function bufferLabel(n: number): string {
  return `(buffer of ${n} bytes)`;
}

async function readFile(path: string, limits: ByteLimits): Promise<{ buf: Buffer; src: Source }> {
  const src = new Source(JSON.stringify(path));
  let fh: fsp.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO without a writer would otherwise block a libuv thread forever; fstat below refuses it.
    fh = await fsp.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : messageOf(err);
    throw src.fail('MATCHD_IMAGE_DECODE', `cannot open: ${why}`, { cause: code ?? messageOf(err) });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw src.fail('MATCHD_IMAGE_DECODE', `not a regular file (${st.isFIFO() ? 'a named pipe' : st.isDirectory() ? 'a directory' : st.isSocket() ? 'a socket' : 'a device or special file'})`);
    if (st.size === 0) throw src.fail('MATCHD_IMAGE_DECODE', 'empty file (0 bytes)', { bytes: 0 });
    if (st.size > limits.maxBytes) {
      throw src.fail('MATCHD_IMAGE_TOO_LARGE', `${st.size} bytes exceeds the limit of ${limits.maxBytes} bytes (limits.maxBytes)`, {
        bytes: st.size, maxBytes: limits.maxBytes,
      });
    }
    const buf = Buffer.allocUnsafe(st.size);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) break; // shrank since stat: decode what is there (it will fail as truncated if it matters)
      filled += bytesRead;
    }
    if (filled === 0) throw src.fail('MATCHD_IMAGE_DECODE', 'empty file (0 bytes)', { bytes: 0 });
    return { buf: buf.subarray(0, filled), src };
  } catch (err) {
    if (err instanceof MatchdError) throw err;
    throw src.fail('MATCHD_IMAGE_DECODE', `cannot read: ${messageOf(err)}`, { cause: messageOf(err) });
  } finally {
    await fh.close().catch(() => {});
  }
}

async function readStream(stream: NodeJS.ReadableStream | AsyncIterable<unknown>, limits: ByteLimits): Promise<{ buf: Buffer; src: Source }> {
  const iterable: AsyncIterable<unknown> =
    Symbol.asyncIterator in stream ? (stream as AsyncIterable<unknown>) : new Readable().wrap(stream as NodeJS.ReadableStream);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    // Throwing inside for-await calls the iterator's return(), which destroys a Node Readable: reading stops at the cap.
    for await (const chunk of iterable) {
      const b = typeof chunk === 'string'
        ? Buffer.from(chunk)
        : ArrayBuffer.isView(chunk)
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          : null;
      if (!b) throw new TypeError(`the stream produced a ${typeof chunk} chunk (expected bytes)`);
      total += b.length;
      if (total > limits.maxBytes) {
        throw new Source(`(stream, over ${limits.maxBytes} bytes read)`).fail(
          'MATCHD_IMAGE_TOO_LARGE',
          `more than ${limits.maxBytes} bytes (limits.maxBytes); reading stopped`,
          { bytes: total, maxBytes: limits.maxBytes },
        );
      }
      chunks.push(b);
    }
  } catch (err) {
    if (err instanceof MatchdError) throw err;
    throw new Source(`(stream, ${total} bytes read)`).fail('MATCHD_IMAGE_DECODE', `reading the stream failed: ${messageOf(err)}`, {
      cause: messageOf(err),
    });
  }
  const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  const src = new Source(`(stream of ${total} bytes)`);
  if (total === 0) throw src.fail('MATCHD_IMAGE_DECODE', 'empty stream (0 bytes)', { bytes: 0 });
  return { buf, src };
}

export async function readInput(input: ImageInput, limits: ByteLimits): Promise<{ buf: Buffer; src: Source }> {
  if (typeof input === 'string') {
    if (input === '') throw new MatchdError('MATCHD_BAD_INPUT', 'image path is an empty string');
    return readFile(input, limits);
  }
  if (input instanceof Uint8Array) {
    const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const src = new Source(bufferLabel(buf.length));
    if (buf.length === 0) throw src.fail('MATCHD_IMAGE_DECODE', 'empty buffer (0 bytes)', { bytes: 0 });
    if (buf.length > limits.maxBytes) {
      throw src.fail('MATCHD_IMAGE_TOO_LARGE', `${buf.length} bytes exceeds the limit of ${limits.maxBytes} bytes (limits.maxBytes)`, {
        bytes: buf.length, maxBytes: limits.maxBytes,
      });
    }
    return { buf, src };
  }
  if (typeof input === 'object' && input !== null && (Symbol.asyncIterator in input || typeof (input as NodeJS.ReadableStream).pipe === 'function')) {
    return readStream(input, limits);
  }
  throw new MatchdError(
    'MATCHD_BAD_INPUT',
    `Expected a file path, Buffer, Uint8Array or readable stream for the image but received ${input === null ? 'null' : typeof input}`,
  );
}
