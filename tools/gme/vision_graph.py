"""vision.onnx: Qwen2-VL's vision tower for B images of the same grid.

  pixel_values  float32 [B, P, C*T*p*p]   patches in the image processor's order (2x2-merge order)
  position_ids  int64   [P, 2]            (row, col) of each patch, same order
  image_embeds  float32 [B, P/4, hidden]  one row per merged visual token

Each of the B images attends only to itself, which equals the reference's cu_seqlens block-diagonal attention.
"""
import numpy as np

from graph_ops import FLOAT, INT64, Ops, inverse_frequencies

VISION_ROPE_THETA = 10000.0
LN_EPS = 1e-6


def attention_by_head(g, ops, q, k, val, hd, heads):
    """Attention one head at a time: an image of 1280 visual tokens has 5120 patches, so one head's score matrix is
    100 MB (float32) and all 16 at once 1.7 GB, twice over with the softmax output. ONNX Runtime runs the heads'
    branches one after the other and frees each score matrix before the next, which bounds the peak; the arithmetic
    is the same."""
    ones = g.const(np.ones(heads, np.int64))
    qs = g.op('Split', q, ones, axis=1, outputs=heads)
    ks = g.op('Split', k, ones, axis=1, outputs=heads)
    vs = g.op('Split', val, ones, axis=1, outputs=heads)
    if heads == 1:
        qs, ks, vs = [qs], [ks], [vs]
    return g.op('Concat', *[ops.attention(qh, kh, vh, hd) for qh, kh, vh in zip(qs, ks, vs)], axis=1)


def build_vision(graph, checkpoint, spec, dtype, progress):
    v = spec.vision
    g, ops = graph, Ops(graph, checkpoint, spec, dtype)
    e, heads, hd = v['embed_dim'], v['num_heads'], v['head_dim']
    merged = e * v['spatial_merge_size'] ** 2

    pixels = g.input('pixel_values', FLOAT, ['batch', 'patches', spec.patch_dim])
    positions = g.input('position_ids', INT64, ['patches', 2])

    # 2-D rotary: head_dim/2 frequencies per axis pair -> [P, hd/2] = (row freqs, col freqs), then duplicated to hd.
    g.scope = 'rotary/'
    inv = g.const(inverse_frequencies(hd // 2, VISION_ROPE_THETA))
    angles = g.op('Mul', g.op('Unsqueeze', g.op('Cast', positions, to=FLOAT), g.const(np.array([-1], np.int64))), inv)
    angles = g.op('Reshape', angles, g.const(np.array([0, -1], np.int64)))
    angles = g.op('Concat', angles, angles, axis=-1)
    per_head = g.const(np.array([0, 1, -1], np.int64))  # [P, 1, hd]: broadcast over heads in [B, P, heads, hd]
    cos = g.op('Reshape', g.op('Cos', angles), per_head)
    sin = g.op('Reshape', g.op('Sin', angles), per_head)

    # Conv3d patch embedding with kernel == stride == the patch: a MatMul over the flattened patch.
    g.scope = 'patch_embed/'
    x = ops.to_float32(ops.linear(ops.to_compute(pixels), 'visual.patch_embed.proj', use_bias=False))

    split_heads = g.const(np.array([0, 0, heads, hd], np.int64))
    join_heads = g.const(np.array([0, 0, e], np.int64))
    for i in range(v['depth']):
        p = f'visual.blocks.{i}.'
        g.scope = f'block{i}/'
        h = ops.to_compute(ops.layer_norm(x, p + 'norm1', LN_EPS))
        qkv_w, qkv_b = ops.load(p + 'attn.qkv.weight'), ops.load(p + 'attn.qkv.bias')
        q, k, val = (g.op('Reshape', ops.linear(h, p + f'attn.{n}', weight=qkv_w[j * e:(j + 1) * e],
                                                 bias=qkv_b[j * e:(j + 1) * e]), split_heads)
                     for j, n in enumerate(('q', 'k', 'v')))
        del qkv_w, qkv_b
        q = g.op('Transpose', ops.scale_rotate(q, cos, sin, hd, scale=True), perm=[0, 2, 1, 3])  # [B, heads, P, hd]
        k = g.op('Transpose', ops.scale_rotate(k, cos, sin, hd), perm=[0, 2, 3, 1])              # [B, heads, hd, P]
        val = g.op('Transpose', val, perm=[0, 2, 1, 3])
        attn = g.op('Reshape', g.op('Transpose', attention_by_head(g, ops, q, k, val, hd, heads), perm=[0, 2, 1, 3]),
                    join_heads)
        x = g.op('Add', x, ops.to_float32(ops.linear(attn, p + 'attn.proj')))
        h = ops.to_compute(ops.layer_norm(x, p + 'norm2', LN_EPS))
        h = ops.linear(ops.quick_gelu(ops.linear(h, p + 'mlp.fc1')), p + 'mlp.fc2')
        x = g.op('Add', x, ops.to_float32(h))
        progress(f'vision block {i + 1}/{v["depth"]}')

    # PatchMerger: LayerNorm, 4 consecutive patches side by side, Linear -> GELU -> Linear to the LLM width.
    g.scope = 'merger/'
    h = ops.layer_norm(x, 'visual.merger.ln_q', LN_EPS)
    h = ops.to_compute(g.op('Reshape', h, g.const(np.array([0, -1, merged], np.int64))))
    h = ops.linear(ops.gelu(ops.linear(h, 'visual.merger.mlp.0')), 'visual.merger.mlp.2')
    g.output(ops.to_float32(h), 'image_embeds', FLOAT, ['batch', 'tokens', v['hidden_size']])
