#!/usr/bin/env python3
"""GME-Qwen2-VL embeddings computed the GME way with Hugging Face transformers' own modules:
model.visual → splice into embed_tokens(ids) at <|image_pad|> → the text model with position_ids=None → final norm
output at the last real token → L2. That is what gme_inference.py does on transformers 4.45-4.51; here it is written
against the module layout of transformers >= 4.52 and 5.x (`model.model.visual`, `model.model.language_model`), with
the older layout (`model.visual`, `model.model`) as a fallback.

  gme_hf_reference.py --checkpoint DIR --inputs IN --out OUT.npy [--inputs IN2 --out OUT2.npy ...]
                      [--device cpu|cuda] [--dtype float32|float16] [--time N] [--timing-out T.json] [--standin]

IN: a folder of .npy files (tools/gme/reference.py's format): input_ids [B,S] int64, attention_mask [B,S] int64 and,
for batches with images, pixel_values [sum P, 1176] float32 + image_grid_thw [n, 3] int64.
--time N: after computing OUT, time N more forward passes per input (CUDA synchronised) and write
{inputs: [{inputs, rows, seconds: [...]}]} to --timing-out. float32 on CUDA runs with TF32 off (exact float32).
--standin (rehearsal where transformers is not installed): the same GME-way code driven through a stand-in with
transformers 5's module layout and output types, whose modules are tools/gme/reference.py's PyTorch forward. It proves
the plumbing, not parity with transformers; every figure it produces is labelled as a stand-in by gme-parity.sh.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def load(checkpoint, device, dtype):
    import torch
    from transformers import Qwen2VLForConditionalGeneration
    kwargs = dict(attn_implementation='eager')
    try:
        model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint, dtype=dtype, **kwargs)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint, torch_dtype=dtype, **kwargs)
    model = model.to(device).eval()
    if device == 'cuda' and dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False  # the patch embedding is a Conv3d
    return model


def load_standin(checkpoint, dtype):
    """tools/gme/reference.py behind transformers 5's layout: model.model.visual(...).pooler_output,
    model.model.language_model.embed_tokens, language_model(inputs_embeds=...).last_hidden_state."""
    import types
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tools', 'gme'))
    import reference
    w = reference.load_weights(checkpoint, dtype)
    text, vision, image_token_id = reference.load_config(checkpoint)

    def visual(pixel_values, grid_thw, return_dict=False):
        merged = reference.vision_tower(w, vision, pixel_values, grid_thw)
        return types.SimpleNamespace(last_hidden_state=None, pooler_output=merged)

    class TextModel:
        embed_tokens = torch.nn.Embedding.from_pretrained(w['model.embed_tokens.weight'])

        def __call__(self, inputs_embeds, attention_mask, position_ids=None, use_cache=False):
            if position_ids is not None:
                raise ValueError('the GME way calls the text model with position_ids=None')
            hidden = reference.decoder(w, text, attention_mask, attention_mask, inputs_embeds)
            return types.SimpleNamespace(last_hidden_state=hidden)

    inner = types.SimpleNamespace(visual=visual, language_model=TextModel())
    return types.SimpleNamespace(model=inner, config=types.SimpleNamespace(image_token_id=image_token_id))


def parts(model):
    """(vision tower, text model, image token id) for either module layout."""
    inner = model.model
    visual = getattr(inner, 'visual', None)
    if visual is None:
        visual = model.visual  # transformers <= 4.51: visual on the outer model, the text model is model.model
    lm = getattr(inner, 'language_model', None)
    if lm is None:
        lm = inner
    cfg = model.config
    image_token_id = getattr(cfg, 'image_token_id', None) or 151655
    return visual, lm, image_token_id


def vision_embeds(visual, pixel_values, grid_thw, rows):
    """The merged visual tokens [rows, hidden]: transformers <= 4.5x returns the tensor, transformers 5 an output whose
    `pooler_output` holds them (its `last_hidden_state` is the tower before the merger, 4x as many rows)."""
    try:
        out = visual(pixel_values, grid_thw=grid_thw, return_dict=True)
    except TypeError:
        out = visual(pixel_values, grid_thw=grid_thw)
    if getattr(out, 'pooler_output', None) is not None:
        out = out.pooler_output
    if isinstance(out, (list, tuple)):  # a tuple output: the merged tokens are the entry with `rows` rows
        found = [t for t in out if hasattr(t, 'shape') and t.ndim == 2 and t.shape[0] == rows]
        if len(found) != 1:
            raise SystemExit(f'gme_hf_reference: the vision tower returned a {type(out).__name__} without one '
                             f'[{rows}, hidden] tensor (a transformers version this script does not know)')
        out = found[0]
    return out


def embed(model, inputs, device, dtype):
    import torch
    import torch.nn.functional as F
    visual, lm, image_token_id = parts(model)
    ids = torch.from_numpy(inputs['input_ids']).long().to(device)
    mask = torch.from_numpy(inputs['attention_mask']).long().to(device)
    embed_tokens = getattr(lm, 'embed_tokens', None) or lm.get_input_embeddings()
    embeds = embed_tokens(ids)
    if 'pixel_values' in inputs and len(inputs['pixel_values']):
        pv = torch.from_numpy(inputs['pixel_values']).to(device=device, dtype=dtype)
        grid = torch.from_numpy(inputs['image_grid_thw']).long().to(device)
        expected = int((grid[:, 0] * grid[:, 1] * grid[:, 2]).sum()) // 4
        image_embeds = vision_embeds(visual, pv, grid, expected)
        where = ids == image_token_id
        if image_embeds.shape[0] != expected or int(where.sum()) != expected:
            raise SystemExit(f'gme_hf_reference: {image_embeds.shape[0]} visual tokens from the tower, '
                             f'{int(where.sum())} image pads in the ids, {expected} expected from the grids')
        embeds = embeds.clone()
        embeds[where] = image_embeds.to(embeds.dtype)
    out = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=None, use_cache=False)
    hidden = out.last_hidden_state if hasattr(out, 'last_hidden_state') else out[0]  # after the final RMSNorm
    last = mask.sum(dim=1) - 1
    pooled = hidden[torch.arange(hidden.shape[0], device=device), last]
    return F.normalize(pooled.float(), p=2, dim=-1)


def read_inputs(folder):
    return {os.path.splitext(n)[0]: np.load(os.path.join(folder, n)) for n in os.listdir(folder) if n.endswith('.npy')}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--inputs', action='append', required=True)
    ap.add_argument('--out', action='append', required=True)
    ap.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    ap.add_argument('--dtype', choices=['float32', 'float16'], default='float32')
    ap.add_argument('--time', type=int, default=0)
    ap.add_argument('--timing-out')
    ap.add_argument('--standin', action='store_true')
    a = ap.parse_args(argv)
    if len(a.inputs) != len(a.out):
        ap.error('give one --out per --inputs')
    import torch
    dtype = getattr(torch, a.dtype)
    model = load_standin(a.checkpoint, dtype) if a.standin else load(a.checkpoint, a.device, dtype)
    timings = []
    with torch.no_grad():
        for inp, out in zip(a.inputs, a.out):
            x = read_inputs(inp)
            np.save(out, embed(model, x, a.device, dtype).cpu().numpy().astype(np.float32))
            if a.time:
                seconds = []
                for _ in range(a.time):
                    if a.device == 'cuda':
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    embed(model, x, a.device, dtype)
                    if a.device == 'cuda':
                        torch.cuda.synchronize()
                    seconds.append(time.perf_counter() - t)
                timings.append({'inputs': inp, 'rows': int(x['input_ids'].shape[0]), 'seconds': seconds})
    if a.timing_out:
        version = 'stand-in (tools/gme/reference.py)' if a.standin else __import__('transformers').__version__
        with open(a.timing_out, 'w') as f:
            json.dump({'transformers': version, 'torch': torch.__version__, 'device': a.device,
                       'dtype': a.dtype, 'inputs': timings}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
