"""decoder.onnx: token embedding, the image splice, Qwen2's decoder, last-token pooling and L2 norm, all in-graph.

  input_ids       int64   [B, S]
  attention_mask  int64   [B, S]        1 = token, 0 = right padding
  image_embeds    float32 [M, hidden]   every image's visual tokens, in batch-row order (M may be 0)
  embeddings      float32 [B, hidden]   L2-normalised

GME calls the decoder with position_ids=None, i.e. positions 0..S-1 in all three M-RoPE sections, which is plain
1-D RoPE: that is what is built here (not get_rope_index). Pooling takes the final RMSNorm output at
attention_mask.sum(1) - 1; the norm is applied after the gather (it is per token, so this is the same value).
"""
import numpy as np

from graph_ops import BOOL, FLOAT, INT64, Ops, inverse_frequencies

MASKED = float(np.finfo(np.float32).min)  # what transformers adds for masked keys (finite: no NaN rows)


def build_decoder(graph, checkpoint, spec, dtype, progress):
    t = spec.text
    g, ops = graph, Ops(graph, checkpoint, spec, dtype)
    hidden, hd = t['hidden_size'], t['head_dim']
    heads, kv = t['num_attention_heads'], t['num_key_value_heads']
    groups = heads // kv
    eps = t['rms_norm_eps']

    ids = g.input('input_ids', INT64, ['batch', 'sequence'])
    mask = g.input('attention_mask', INT64, ['batch', 'sequence'])
    images = g.input('image_embeds', FLOAT, ['image_tokens', hidden])
    i64 = lambda *v: g.const(np.array(v, np.int64))  # noqa: E731
    scalar = lambda v: g.const(np.array(v, np.int64))  # noqa: E731  (0-D: Range, CumSum and Gather want scalars)

    # Embedding + splice: row r of image_embeds replaces the r-th <|image_pad|> (row-major over the batch);
    # other positions gather the appended zero row, then Where keeps their token embedding.
    g.scope = 'embed/'
    key = spec.key('model.embed_tokens.weight')
    table = g.weight_blocks('model.embed_tokens.weight', ops.np_dtype, checkpoint.tensors[key].shape,
                            checkpoint.read_rows_float32(key))  # the largest tensor: streamed in row blocks
    tokens = ops.to_float32(g.op('Gather', table, ids, axis=0))
    is_image = g.op('Equal', ids, i64(spec.tokens['<|image_pad|>']))
    order = g.op('Sub', g.op('CumSum', g.op('Reshape', g.op('Cast', is_image, to=INT64), i64(-1)), scalar(0)), scalar(1))
    order = g.op('Reshape', order, g.op('Shape', ids))
    count = g.op('Gather', g.op('Shape', images), scalar(0), axis=0)
    rows = g.op('Where', is_image, order, count)
    padded = g.op('Concat', images, g.const(np.zeros((1, hidden), np.float32)), axis=0)
    x = g.op('Where', g.op('Unsqueeze', is_image, i64(-1)), g.op('Gather', padded, rows, axis=0), tokens)

    # Positions 0..S-1: causal + key-padding additive mask [B, 1, 1, S, S] and RoPE tables [S, 1, 1, hd].
    g.scope = 'positions/'
    length = g.op('Gather', g.op('Shape', ids), scalar(1), axis=0)
    pos = g.op('Range', scalar(0), length, scalar(1))
    causal = g.op('LessOrEqual', g.op('Unsqueeze', pos, i64(0)), g.op('Unsqueeze', pos, i64(1)))  # key <= query
    keys = g.op('Unsqueeze', g.op('Cast', mask, to=BOOL), i64(1, 2, 3))
    bias = g.op('Where', g.op('And', causal, keys), g.const(np.float32(0.0)), g.const(np.float32(MASKED)))
    angles = g.op('Mul', g.op('Unsqueeze', g.op('Cast', pos, to=FLOAT), i64(1)),
                  g.const(inverse_frequencies(hd, t['rope_theta'])))
    angles = g.op('Reshape', g.op('Concat', angles, angles, axis=-1), i64(0, 1, 1, hd))
    cos, sin = g.op('Cos', angles), g.op('Sin', angles)

    q_shape, kv_shape, join = i64(0, 0, kv, groups, hd), i64(0, 0, kv, 1, hd), i64(0, 0, heads * hd)
    for i in range(t['num_hidden_layers']):
        p = f'model.layers.{i}.'
        g.scope = f'layer{i}/'
        h = ops.to_compute(ops.rms_norm(x, p + 'input_layernorm', eps))
        # GQA without copying K/V: q as [B, kv, groups, S, hd] against k, v as [B, kv, 1, ., .] (broadcast MatMul).
        q = g.op('Reshape', ops.linear(h, p + 'self_attn.q_proj'), q_shape)
        k = g.op('Reshape', ops.linear(h, p + 'self_attn.k_proj'), kv_shape)
        val = g.op('Reshape', ops.linear(h, p + 'self_attn.v_proj'), kv_shape)
        q = g.op('Transpose', ops.scale_rotate(q, cos, sin, hd, scale=True), perm=[0, 2, 3, 1, 4])
        k = g.op('Transpose', ops.scale_rotate(k, cos, sin, hd), perm=[0, 2, 3, 4, 1])
        val = g.op('Transpose', val, perm=[0, 2, 3, 1, 4])
        attn = g.op('Transpose', ops.attention(q, k, val, hd, bias=bias), perm=[0, 3, 1, 2, 4])
        attn = ops.linear(g.op('Reshape', attn, join), p + 'self_attn.o_proj', use_bias=False)
        x = g.op('Add', x, ops.to_float32(attn))
        h = ops.to_compute(ops.rms_norm(x, p + 'post_attention_layernorm', eps))
        gate = ops.silu(ops.linear(h, p + 'mlp.gate_proj', use_bias=False))
        up = ops.linear(h, p + 'mlp.up_proj', use_bias=False)
        x = g.op('Add', x, ops.to_float32(ops.linear(g.op('Mul', gate, up), p + 'mlp.down_proj', use_bias=False)))
        progress(f'decoder layer {i + 1}/{t["num_hidden_layers"]}')

    # Last real token of each row, final RMSNorm, L2 normalisation (F.normalize: x / max(||x||, 1e-12)).
    g.scope = 'pool/'
    last = g.op('Sub', g.op('ReduceSum', mask, i64(1), keepdims=0), scalar(1))
    pooled = g.op('GatherND', x, g.op('Unsqueeze', last, i64(-1)), batch_dims=1)
    pooled = ops.rms_norm(pooled, 'model.norm', eps)
    norm = g.op('Sqrt', g.op('ReduceSum', g.op('Mul', pooled, pooled), i64(-1), keepdims=1))
    out = g.op('Div', pooled, g.op('Max', norm, g.const(np.float32(1e-12))))
    g.output(out, 'embeddings', FLOAT, ['batch', hidden])
