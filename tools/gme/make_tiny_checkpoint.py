#!/usr/bin/env python3
"""Write a random Qwen2-VL (GME) checkpoint in exactly the Hugging Face layout: config.json, safetensors (one file, or
shards + model.safetensors.index.json), tokenizer.json with Qwen2's special-token ids. Real key names, vocab 151936.

  make_tiny_checkpoint.py OUT [--dtype F32|BF16|F16] [--seed N] [--shards N] [--layout legacy|new] [--untied]
  make_tiny_checkpoint.py OUT --size 2b --dtype BF16 --shards 2     # GME-2B shapes, random weights (~4.4 GB)

Test-only damage: --omit KEY (leave a tensor out), --shape KEY=AxB (write it with a wrong shape).
Needs numpy only. Weights are drawn per tensor (seeded by name) and written one at a time, so memory stays at the
largest tensor even for the 2B shapes.
"""
import argparse
import json
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_spec import Spec, expected_tensors  # noqa: E402
from tiny_tokenizer import build_tokenizer  # noqa: E402

SIZES = {
    # widths small enough for fast tests, with GQA (4 heads / 2 KV heads) and 2-D rotary (vision head 16)
    'tiny': dict(vision=dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=4),
                 text=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           intermediate_size=64)),
    '2b': dict(vision=dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4),
               text=dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         intermediate_size=8960)),
}
ITEMSIZE = {'F32': 4, 'F16': 2, 'BF16': 2}


def make_config(size, layout, tied):
    s = SIZES[size]
    text = dict(s['text'], vocab_size=151936, hidden_act='silu', rms_norm_eps=1e-6, max_position_embeddings=32768,
                max_window_layers=s['text']['num_hidden_layers'], sliding_window=32768, use_sliding_window=False,
                attention_dropout=0.0, initializer_range=0.02, use_cache=True)
    half = s['text']['hidden_size'] // s['text']['num_attention_heads'] // 2
    first = half // 4
    mrope = [first, (half - first) // 2, half - first - (half - first) // 2]  # [16, 24, 24] for 2B; sums to half
    vision = dict(s['vision'], hidden_size=s['text']['hidden_size'], patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2)
    ids = dict(bos_token_id=151643, eos_token_id=151645, vision_start_token_id=151652, vision_end_token_id=151653,
               vision_token_id=151654, image_token_id=151655, video_token_id=151656)
    if layout == 'legacy':  # transformers 4.45-4.51: text settings at the top level, GME's own `in_chans` spelling
        vision.update(in_chans=3, spatial_patch_size=14)
        return dict(architectures=['Qwen2VLForConditionalGeneration'], model_type='qwen2_vl', **text, **ids,
                    rope_theta=1000000.0, rope_scaling={'type': 'mrope', 'mrope_section': mrope},
                    tie_word_embeddings=tied, torch_dtype='bfloat16', transformers_version='4.45.0',
                    vision_config=vision)
    vision.update(in_channels=3, hidden_act='quick_gelu')
    text.update(rope_parameters={'rope_type': 'default', 'rope_theta': 1000000.0, 'mrope_section': mrope},
                tie_word_embeddings=tied)
    return dict(architectures=['Qwen2VLForConditionalGeneration'], model_type='qwen2_vl', **ids,
                tie_word_embeddings=tied, dtype='bfloat16', transformers_version='5.0.0',
                text_config=dict(text, model_type='qwen2_vl_text'), vision_config=vision)


def random_tensor(name, shape, seed):
    """Roughly unit-gain weights so that a tiny random model gives well-spread embeddings."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if name.endswith('norm.weight') or 'norm1.weight' in name or 'norm2.weight' in name or 'ln_q.weight' in name \
            or name.endswith('layernorm.weight'):
        return (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    if name.endswith('.bias'):
        return 0.1 * rng.standard_normal(shape, dtype=np.float32)
    if name.endswith('embed_tokens.weight') or name == 'lm_head.weight':
        return rng.standard_normal(shape, dtype=np.float32)
    fan_in = int(np.prod(shape[1:]))
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= np.float32(1.0 / np.sqrt(fan_in))
    return x


def encode(arr, dtype):
    if dtype == 'F32':
        return arr.astype('<f4', copy=False).tobytes()
    if dtype == 'F16':
        return arr.astype('<f2').tobytes()
    bits = arr.astype(np.float32, copy=False).view(np.uint32)
    rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16  # round to nearest even
    return rounded.astype('<u2').tobytes()


def write_shards(out, entries, dtype, shards, seed):
    """entries: [(key, shape)]. Split into `shards` files of about equal bytes; tensors are generated while writing."""
    total = sum(int(np.prod(s)) * ITEMSIZE[dtype] for _, s in entries)
    groups, current, acc = [[]], 0, 0
    for key, shape in entries:
        nbytes = int(np.prod(shape)) * ITEMSIZE[dtype]
        if groups[current] and acc + nbytes / 2 > total * (current + 1) / shards and current + 1 < shards:
            groups.append([])
            current += 1
        groups[current].append((key, shape))
        acc += nbytes
    names = ['model.safetensors'] if len(groups) == 1 else \
        [f'model-{i + 1:05d}-of-{len(groups):05d}.safetensors' for i in range(len(groups))]
    weight_map = {}
    for name, group in zip(names, groups):
        header, offset = {'__metadata__': {'format': 'pt'}}, 0
        for key, shape in group:
            n = int(np.prod(shape)) * ITEMSIZE[dtype]
            header[key] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [offset, offset + n]}
            offset += n
            weight_map[key] = name
        raw = json.dumps(header, separators=(',', ':')).encode()
        raw += b' ' * (-len(raw) % 8)  # the format pads the header to 8 bytes
        with open(os.path.join(out, name), 'wb') as f:
            f.write(len(raw).to_bytes(8, 'little'))
            f.write(raw)
            for key, shape in group:
                f.write(encode(random_tensor(key, shape, seed), dtype))
    if len(names) > 1:
        with open(os.path.join(out, 'model.safetensors.index.json'), 'w') as f:
            json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out')
    p.add_argument('--size', choices=sorted(SIZES), default='tiny')
    p.add_argument('--dtype', choices=sorted(ITEMSIZE), default='F32')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--shards', type=int, default=1)
    p.add_argument('--layout', choices=['legacy', 'new'], default='legacy')
    p.add_argument('--untied', action='store_true', help='separate lm_head.weight (tie_word_embeddings false)')
    p.add_argument('--omit', action='append', default=[], metavar='KEY')
    p.add_argument('--shape', action='append', default=[], metavar='KEY=AxB')
    a = p.parse_args(argv)

    config = make_config(a.size, a.layout, not a.untied)
    spec = Spec()
    spec.layout = a.layout
    s = SIZES[a.size]
    spec.vision = dict(s['vision'], hidden_size=s['text']['hidden_size'], in_channels=3, patch_size=14,
                       spatial_merge_size=2, temporal_patch_size=2, mlp_dim=s['vision']['embed_dim'] * s['vision']['mlp_ratio'])
    spec.text = dict(s['text'], vocab_size=151936, head_dim=s['text']['hidden_size'] // s['text']['num_attention_heads'])
    spec.tied = not a.untied
    entries = [(spec.key(k), shape) for k, shape in expected_tensors(spec).items()]
    bad_shapes = dict(x.split('=', 1) for x in a.shape)
    entries = [(k, tuple(int(d) for d in bad_shapes[k].split('x')) if k in bad_shapes else shape)
               for k, shape in entries if k not in a.omit]

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(a.out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(build_tokenizer(), f, ensure_ascii=False)
    write_shards(a.out, entries, a.dtype, a.shards, a.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
