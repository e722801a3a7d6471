#!/usr/bin/env python3
"""A tiny random Qwen2VLForConditionalGeneration built by Hugging Face transformers itself, saved with
save_pretrained: the checkpoint layout, key names and config.json exactly as the installed transformers writes them
(what a user's download looks like to `matchd model import`), plus a tokenizer.json with Qwen2's special-token ids.

  gme_hf_checkpoint.py OUT [--seed N]

The configuration is tools/gme/make_tiny_checkpoint.py's tiny one in the transformers 5 layout (text_config /
vision_config, rope_parameters), read by transformers' own Qwen2VLConfig; transformers then builds the modules and
writes the weights. Weights are redrawn at unit gain (transformers' own init, std 0.02, gives nearly identical
embeddings for every input, which would make a parity check weak). Needs torch + transformers (no network).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tools', 'gme'))
from make_tiny_checkpoint import make_config  # noqa: E402
from tiny_tokenizer import build_tokenizer  # noqa: E402


def unit_gain_(model, seed):
    """Redraw every parameter: norms ~1, biases small, embeddings N(0, 1), matrices N(0, 1/fan_in)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                is_norm = name.endswith('weight') and ('norm' in name or 'ln_q' in name)
                p.copy_((1.0 if is_norm else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
            elif 'embed_tokens' in name or 'lm_head' in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('out')
    ap.add_argument('--seed', type=int, default=7)
    a = ap.parse_args(argv)

    import torch
    import transformers
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    config = None
    for layout in ('new', 'legacy'):  # transformers 5 reads the new layout; older versions the legacy one
        cfg_dict = make_config('tiny', layout, True)
        cfg_dict.update(dtype='float32', torch_dtype='float32')
        try:
            config = Qwen2VLConfig.from_dict(cfg_dict)
            break
        except Exception as err:  # noqa: BLE001 - report and try the other layout
            print(f'gme_hf_checkpoint: Qwen2VLConfig rejected the {layout} layout: {err}', file=sys.stderr)
    if config is None:
        return 2
    torch.manual_seed(a.seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    unit_gain_(model, a.seed)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    with open(os.path.join(a.out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(build_tokenizer(), f, ensure_ascii=False)
    files = sorted(os.listdir(a.out))
    layout = {k: type(getattr(model.model, k, None)).__name__ for k in ('visual', 'language_model')}
    print(json.dumps({'transformers': transformers.__version__, 'torch': torch.__version__, 'config_layout': layout,
                      'files': files, 'parameters': sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
