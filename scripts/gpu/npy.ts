/** NumPy .npy files (format 1.0, little-endian float32 / int64, C order): what the Python side reads and writes. */
import fs from 'node:fs';

export type NpyData = Float32Array | BigInt64Array;

export function writeNpy(file: string, data: NpyData, shape: number[]): void {
  const descr = data instanceof Float32Array ? '<f4' : '<i8';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n'; // the format aligns the data to 64 bytes
  const head = Buffer.alloc(10);
  Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

export function readNpy(file: string): { data: NpyData; shape: number[] } {
  const buf = fs.readFileSync(file);
  if (buf.subarray(1, 6).toString('latin1') !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6]!;
  const len = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + len).toString('latin1');
  if (/'fortran_order': True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1]!.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const bytes = buf.subarray(start + len);
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (header.includes("'<f4'")) return { data: new Float32Array(copy), shape };
  if (header.includes("'<i8'")) return { data: new BigInt64Array(copy), shape };
  throw new Error(`${file}: expected float32 or int64, header ${header}`);
}
