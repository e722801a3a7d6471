/**
 * The vision graph's `position_ids` [P, 2] (int64): the (row, col) of each patch, in the order the patches are packed
 * (merge blocks row-major, the mergeSize² patches of a block row-major inside it). This is transformers'
 * `rot_pos_emb` index: hpos = arange(gh)[:, None].expand(gh, gw) → reshape(gh/m, m, gw/m, m) → permute(0, 2, 1, 3)
 * → flatten, the same for wpos, stacked on the last axis.
 */
export function positionIds(gridH: number, gridW: number, mergeSize: number): BigInt64Array {
  const m = mergeSize;
  const out = new BigInt64Array(gridH * gridW * 2);
  let i = 0;
  for (let bh = 0; bh < gridH / m; bh++) {
    for (let bw = 0; bw < gridW / m; bw++) {
      for (let mh = 0; mh < m; mh++) {
        for (let mw = 0; mw < m; mw++) {
          out[i++] = BigInt(bh * m + mh);
          out[i++] = BigInt(bw * m + mw);
        }
      }
    }
  }
  return out;
}
