#!/usr/bin/env python3
"""GME-Qwen2-VL embeddings computed the GME way in plain PyTorch: the reference the exported graphs are tested against.

Written from the model's semantics (gme_inference.py on transformers 4.45-4.51 Qwen2-VL), independently of the
ONNX builder: it reads safetensors with torch's own dtype conversion, uses conv3d for the patch embedding, runs all
images of a batch through the vision tower together with cu_seqlens block-diagonal attention, splices with a boolean
mask, runs the decoder with position_ids 0..S-1, pools at attention_mask.sum(1) - 1 and L2-normalises.

  reference.py --checkpoint DIR --inputs IN --out OUT.npy [--inputs IN2 --out OUT2.npy ...] [--dtype float64]

IN is an .npz file or a folder of .npy files: input_ids [B,S] int64, attention_mask [B,S] int64 and, when the batch
has images, pixel_values [sum P, C*T*p*p] float32 with image_grid_thw [n, 3] int64 (the image processor's format).
OUT receives the embeddings [B, hidden] as float32.
"""
import argparse
import glob
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

TORCH_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


def load_weights(directory, dtype):
    """Every tensor of every *.safetensors file, as `dtype`, under its legacy (transformers 4.45) name."""
    weights = {}
    for path in sorted(glob.glob(os.path.join(directory, '*.safetensors'))):
        with open(path, 'rb') as f:
            blob = f.read()
        n = int.from_bytes(blob[:8], 'little')
        header = json.loads(blob[8:8 + n])
        for name, e in header.items():
            if name == '__metadata__':
                continue
            begin, end = e['data_offsets']
            t = torch.frombuffer(bytearray(blob[8 + n + begin:8 + n + end]), dtype=TORCH_DTYPES[e['dtype']])
            name = name.replace('model.language_model.', 'model.').replace('model.visual.', 'visual.')
            weights[name] = t.reshape(e['shape']).to(dtype)
    return weights


def load_config(directory):
    with open(os.path.join(directory, 'config.json')) as f:
        cfg = json.load(f)
    text = dict(cfg)
    text.update(cfg.get('text_config') or {})
    if 'rope_theta' not in text:
        text['rope_theta'] = text['rope_parameters']['rope_theta']
    vision = dict(depth=32, embed_dim=1280, num_heads=16, in_channels=3, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2)
    vision.update(cfg['vision_config'])
    return text, vision, cfg.get('image_token_id', 151655)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def vision_tower(w, v, pixel_values, grid_thw):
    dtype = pixel_values.dtype
    c, t, p, e, heads = v['in_channels'], v['temporal_patch_size'], v['patch_size'], v['embed_dim'], v['num_heads']
    hd, s = e // heads, v['spatial_merge_size']
    x = F.conv3d(pixel_values.view(-1, c, t, p, p), w['visual.patch_embed.proj.weight'], stride=(t, p, p)).view(-1, e)

    # rot_pos_emb: (row, col) of each patch in 2x2-merge order; frequencies for head_dim/2, theta 10000
    pos = []
    for gt, gh, gw in grid_thw.tolist():
        hpos = torch.arange(gh).unsqueeze(1).expand(-1, gw).reshape(gh // s, s, gw // s, s).permute(0, 2, 1, 3).flatten()
        wpos = torch.arange(gw).unsqueeze(0).expand(gh, -1).reshape(gh // s, s, gw // s, s).permute(0, 2, 1, 3).flatten()
        pos.append(torch.stack([hpos, wpos], dim=-1).repeat(gt, 1))
    pos = torch.cat(pos)
    dim = hd // 2
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    table = torch.outer(torch.arange(int(grid_thw[:, 1:].max()), dtype=torch.float), inv_freq)
    freqs = table[pos].flatten(1)
    cos = freqs.cos().repeat(1, 2).unsqueeze(1).to(dtype)  # [L, 1, hd]
    sin = freqs.sin().repeat(1, 2).unsqueeze(1).to(dtype)

    lengths = (grid_thw[:, 0] * grid_thw[:, 1] * grid_thw[:, 2]).tolist()
    cu = [0]
    for n in lengths:
        cu.append(cu[-1] + n)
    total = cu[-1]
    mask = torch.full((total, total), torch.finfo(dtype).min, dtype=dtype)
    for a, b in zip(cu[:-1], cu[1:]):
        mask[a:b, a:b] = 0

    for i in range(v['depth']):
        b = f'visual.blocks.{i}.'
        h = F.layer_norm(x, (e,), w[b + 'norm1.weight'], w[b + 'norm1.bias'], 1e-6)
        q, k, val = F.linear(h, w[b + 'attn.qkv.weight'], w[b + 'attn.qkv.bias']).reshape(total, 3, heads, hd).permute(1, 0, 2, 3).unbind(0)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        q, k, val = q.transpose(0, 1), k.transpose(0, 1), val.transpose(0, 1)  # [heads, L, hd]
        scores = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(hd) + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        out = torch.matmul(probs, val).transpose(0, 1).reshape(total, e)
        x = x + F.linear(out, w[b + 'attn.proj.weight'], w[b + 'attn.proj.bias'])
        h = F.layer_norm(x, (e,), w[b + 'norm2.weight'], w[b + 'norm2.bias'], 1e-6)
        h = F.linear(h, w[b + 'mlp.fc1.weight'], w[b + 'mlp.fc1.bias'])
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, w[b + 'mlp.fc2.weight'], w[b + 'mlp.fc2.bias'])

    h = F.layer_norm(x, (e,), w['visual.merger.ln_q.weight'], w['visual.merger.ln_q.bias'], 1e-6).view(-1, e * s * s)
    h = F.gelu(F.linear(h, w['visual.merger.mlp.0.weight'], w['visual.merger.mlp.0.bias']))
    return F.linear(h, w['visual.merger.mlp.2.weight'], w['visual.merger.mlp.2.bias'])


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def decoder(w, t, input_ids, attention_mask, inputs_embeds):
    bsz, seq = input_ids.shape
    hidden, heads, kv = t['hidden_size'], t['num_attention_heads'], t['num_key_value_heads']
    hd, groups, eps, dtype = hidden // heads, heads // kv, t['rms_norm_eps'], inputs_embeds.dtype
    inv_freq = 1.0 / (t['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float), inv_freq)  # position_ids=None -> 0..S-1
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)  # [S, hd]

    allowed = torch.tril(torch.ones(seq, seq, dtype=torch.bool))[None, None] & attention_mask.bool()[:, None, None, :]
    bias = torch.zeros(bsz, 1, seq, seq, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)

    x = inputs_embeds
    for i in range(t['num_hidden_layers']):
        b = f'model.layers.{i}.'
        h = rms_norm(x, w[b + 'input_layernorm.weight'], eps)
        q = F.linear(h, w[b + 'self_attn.q_proj.weight'], w[b + 'self_attn.q_proj.bias']).view(bsz, seq, heads, hd).transpose(1, 2)
        k = F.linear(h, w[b + 'self_attn.k_proj.weight'], w[b + 'self_attn.k_proj.bias']).view(bsz, seq, kv, hd).transpose(1, 2)
        val = F.linear(h, w[b + 'self_attn.v_proj.weight'], w[b + 'self_attn.v_proj.bias']).view(bsz, seq, kv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(bsz, kv, groups, seq, hd).reshape(bsz, heads, seq, hd)  # repeat_kv
        val = val[:, :, None].expand(bsz, kv, groups, seq, hd).reshape(bsz, heads, seq, hd)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd) + bias
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        out = torch.matmul(probs, val).transpose(1, 2).reshape(bsz, seq, heads * hd)
        x = x + F.linear(out, w[b + 'self_attn.o_proj.weight'])
        h = rms_norm(x, w[b + 'post_attention_layernorm.weight'], eps)
        gate = F.linear(h, w[b + 'mlp.gate_proj.weight'])
        x = x + F.linear(F.silu(gate) * F.linear(h, w[b + 'mlp.up_proj.weight']), w[b + 'mlp.down_proj.weight'])
    return rms_norm(x, w['model.norm.weight'], eps)


def embed(w, text, vision, image_token_id, inputs, dtype):
    input_ids = torch.from_numpy(inputs['input_ids']).long()
    attention_mask = torch.from_numpy(inputs['attention_mask']).long()
    inputs_embeds = w['model.embed_tokens.weight'][input_ids].clone()
    if 'pixel_values' in inputs and len(inputs['pixel_values']):
        pixel_values = torch.from_numpy(inputs['pixel_values']).to(dtype)
        image_embeds = vision_tower(w, vision, pixel_values, torch.from_numpy(inputs['image_grid_thw']).long())
        inputs_embeds[input_ids == image_token_id] = image_embeds
    last_hidden = decoder(w, text, input_ids, attention_mask, inputs_embeds)
    last = attention_mask.sum(dim=1) - 1
    pooled = last_hidden[torch.arange(len(last)), last]
    return F.normalize(pooled, p=2, dim=1)


def read_inputs(path):
    if os.path.isdir(path):
        return {os.path.splitext(n)[0]: np.load(os.path.join(path, n)) for n in os.listdir(path) if n.endswith('.npy')}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def main(argv=None):
    p = argparse.ArgumentParser(description='GME-Qwen2-VL reference embeddings (PyTorch).')
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--inputs', action='append', required=True)
    p.add_argument('--out', action='append', required=True)
    p.add_argument('--dtype', choices=['float32', 'float64'], default='float32')
    a = p.parse_args(argv)
    if len(a.inputs) != len(a.out):
        p.error('give one --out per --inputs')
    dtype = getattr(torch, a.dtype)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    weights = load_weights(a.checkpoint, dtype)
    text, vision, image_token_id = load_config(a.checkpoint)
    with torch.no_grad():
        for inp, out in zip(a.inputs, a.out):
            result = embed(weights, text, vision, image_token_id, read_inputs(inp), dtype)
            np.save(out, result.to(torch.float32).numpy())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
