/** Embedding outputs → unit-length rows (shared by every family). */
import { addon, type Tensor } from '../../native.ts';
import { l2normalize } from '../../scoring.ts';

/** Split a [n, D] output into unit-length float32 rows (float16 outputs widened first). */
export function unitRows(t: Tensor, n: number): Float32Array[] {
  const data = t.type === 'float16' ? addon().float16ToFloat32(t.data as Uint16Array) : (t.data as Float32Array);
  const d = data.length / n;
  return Array.from({ length: n }, (_, i) => l2normalize(data.slice(i * d, (i + 1) * d)));
}
