#!/usr/bin/python3
"""
Build a CLIP ViT-B/32-shaped dual encoder with random weights (fixed seed) and export it as a matchd model package:

    <out>/image.onnx      pixel_values [batch,3,224,224] float32        -> image_embeds [batch,512]
    <out>/text.onnx       input_ids, attention_mask [batch,77] int64    -> text_embeds  [batch,512]
    <out>/tokenizer.json  a synthetic whole-word WordPiece tokenizer (49408 tokens; the real CLIP BPE vocab is not
                          available offline). WordPiece rather than WordLevel because transformers.js's tokenizers
                          implement only BPE, WordPiece and Unigram.
    <out>/model.yaml      the manifest (224x224, shortest-edge-crop, CLIP mean/std, maxLength 77, padding max_length)
    <out>/hf/             the same ONNX files (hard links) in the layout transformers.js loads from a local folder:
                          config.json, preprocessor_config.json, tokenizer.json, tokenizer_config.json,
                          onnx/vision_model.onnx, onnx/text_model.onnx

The weights are random: scores are meaningless, only speed is measured with this model.

Needs (installs nothing itself): Debian's python3-torch (1.13) and python3-onnx, i.e.
    apt-get install -y python3-torch python3-onnx
and is run with /usr/bin/python3 (bench/build-model.ts does that for you).

    /usr/bin/python3 bench/model/build-clip.py [--out DIR] [--tiny] [--force]

--tiny builds a small model with the same interface and the same preprocessing (vision width 64, 2 layers; text
width 64, 1 layer), for the memory benchmark where the pipeline, not the model, is under test.
"""
import argparse
import json
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("build-clip.py needs PyTorch: apt-get install -y python3-torch python3-onnx (Debian), run with /usr/bin/python3")
try:
    import onnx
except ImportError:
    onnx = None  # only used for the final check


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, bias=None):
        b, n, c = x.shape
        h = self.heads
        d = c // h
        qkv = self.qkv(x).reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4)  # 3, b, h, n, d
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
        if bias is not None:
            att = att + bias
        att = att.softmax(dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, n, c)
        return self.out(y)


class Block(nn.Module):
    """Pre-LN transformer block with CLIP's QuickGELU MLP."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x, bias=None):
        x = x + self.attn(self.ln_1(x), bias)
        h = self.c_fc(self.ln_2(x))
        h = h * torch.sigmoid(1.702 * h)  # QuickGELU
        return x + self.c_proj(h)


class Vision(nn.Module):
    def __init__(self, image=224, patch=32, width=768, layers=12, heads=12, embed=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        scale = width ** -0.5
        grid = image // patch
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed))

    def forward(self, pixel_values):
        x = self.conv1(pixel_values)  # b, w, g, g
        x = x.flatten(2).transpose(1, 2)  # b, g*g, w
        cls = self.class_embedding.reshape(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x)
        return self.ln_post(x[:, 0, :]) @ self.proj


class Text(nn.Module):
    def __init__(self, vocab=49408, context=77, width=512, layers=12, heads=8, embed=512):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context, width))
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(width ** -0.5 * torch.randn(width, embed))
        causal = torch.full((context, context), -1e4).triu(1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, input_ids, attention_mask):
        n = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.positional_embedding[:n]
        # causal mask plus padding mask (additive, finite so that a fully masked row cannot produce NaN)
        pad = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -1e4
        bias = self.causal[:n, :n][None, None, :, :] + pad
        for blk in self.blocks:
            x = blk(x, bias)
        x = self.ln_final(x)
        # EOT pooling as in CLIP: the end-of-text token has the largest id in the vocabulary
        eot = input_ids.argmax(dim=-1)
        x = x[torch.arange(x.shape[0]), eot]
        return x @ self.text_projection


def params(m):
    return sum(p.numel() for p in m.parameters())


def write_tokenizer(path, vocab_size):
    # Synthetic whole-word WordPiece vocabulary: a few real words (so that sample queries map to distinct tokens),
    # then tok00000...; CLIP's special tokens at the top (49406 start, 49407 end: EOT pooling takes the argmax).
    words = ("a an the of and with in on at to for photo picture image drawing painting close up red orange yellow "
             "green blue purple pink white grey gray black brown dog cat car bus bird horse cow sheep person man woman "
             "child people street city house tree flower sky sea beach mountain snow food plate cup table chair bed "
             "room kitchen window door book phone computer shoe shirt dress bag ball boat train plane bike road field "
             "night day sunset sunny rainy small large big little old new two three many one some this that is are "
             "sitting standing running playing eating holding wearing looking").split()
    specials = ["<|startoftext|>", "<|endoftext|>"]
    vocab = {"<|pad|>": 0, "<|unk|>": 1}
    for w in words:
        if w not in vocab:
            vocab[w] = len(vocab)
    i = 0
    while len(vocab) < vocab_size - len(specials):
        vocab[f"tok{i:05d}"] = len(vocab)
        i += 1
    bos, eos = vocab_size - 2, vocab_size - 1
    vocab[specials[0]] = bos
    vocab[specials[1]] = eos
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for c, i in [("<|pad|>", 0), ("<|unk|>", 1), (specials[0], bos), (specials[1], eos)]
        ],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "model": {"type": "WordPiece", "unk_token": "<|unk|>", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": specials[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": specials[1], "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": specials[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": specials[1], "type_id": 0}}],
            "special_tokens": {
                specials[0]: {"id": specials[0], "ids": [bos], "tokens": [specials[0]]},
                specials[1]: {"id": specials[1], "ids": [eos], "tokens": [specials[1]]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    }
    with open(path, "w") as f:
        json.dump(tok, f)
    return len(vocab)


MANIFEST = """# Generated by bench/model/build-clip.py: do not edit by hand.
name: {name}
version: 1
description: "{desc}"
embeddingSize: 512
normalized: false
image:
  model: image.onnx
  input: pixel_values
  output: image_embeds
  size:
    width: 224
    height: 224
  resize: shortest-edge-crop
  mean: [0.48145466, 0.4578275, 0.40821073]
  std: [0.26862954, 0.26130258, 0.27577711]
  channelOrder: rgb
  dtype: float32
text:
  model: text.onnx
  tokenizer: tokenizer.json
  inputIds: input_ids
  attentionMask: attention_mask
  output: text_embeds
  maxLength: 77
  padding: max_length
  padId: 0
  dtype: int64
score:
  range: [0.1, 0.5]
"""


MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def write_hf_layout(out, tiny):
    """The files transformers.js needs to load this package from a local folder (no network)."""
    hf = os.path.join(out, "hf")
    os.makedirs(os.path.join(hf, "onnx"), exist_ok=True)
    for src, dst in [("image.onnx", "onnx/vision_model.onnx"), ("text.onnx", "onnx/text_model.onnx"), ("tokenizer.json", "tokenizer.json")]:
        d = os.path.join(hf, dst)
        if os.path.exists(d):
            os.remove(d)
        os.link(os.path.join(out, src), d)
    vw, vl, vh = (64, 2, 2) if tiny else (768, 12, 12)
    tw, tl, th = (64, 1, 2) if tiny else (512, 12, 8)
    files = {
        "config.json": {
            "model_type": "clip", "architectures": ["CLIPModel"], "projection_dim": 512,
            "text_config": {"model_type": "clip_text_model", "hidden_size": tw, "num_hidden_layers": tl,
                            "num_attention_heads": th, "vocab_size": 49408, "max_position_embeddings": 77,
                            "projection_dim": 512, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 0},
            "vision_config": {"model_type": "clip_vision_model", "hidden_size": vw, "num_hidden_layers": vl,
                              "num_attention_heads": vh, "image_size": 224, "patch_size": 32, "projection_dim": 512},
        },
        "preprocessor_config.json": {
            "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 224},
            "resample": 3, "do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "do_rescale": True,
            "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": MEAN, "image_std": STD, "do_convert_rgb": True,
        },
        "tokenizer_config.json": {
            "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>", "unk_token": "<|unk|>", "pad_token": "<|pad|>", "do_lower_case": True,
        },
    }
    for name, content in files.items():
        with open(os.path.join(hf, name), "w") as f:
            json.dump(content, f, indent=2)


def export(model, args, path, input_names, output_names, opset):
    dyn = {n: {0: "batch"} for n in input_names + output_names}
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(model, args, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=dyn, opset_version=opset, do_constant_folding=True)
    print(f"  exported {os.path.basename(path)} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.time() - t0:.1f} s", flush=True)
    if onnx is not None:
        onnx.checker.check_model(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    name = "clip-tiny-random" if a.tiny else "clip-b32-random"
    out = a.out or os.path.join(here, "..", "models", name)
    out = os.path.abspath(out)
    if os.path.exists(os.path.join(out, "model.yaml")) and not a.force:
        print(f"{out} exists (use --force to rebuild)")
        return
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    if a.tiny:
        vision = Vision(width=64, layers=2, heads=2).eval()
        text = Text(width=64, layers=1, heads=2).eval()
    else:
        vision = Vision().eval()  # ViT-B/32: patch 32, width 768, 12 layers, 12 heads, MLP 3072
        text = Text().eval()  # width 512, 8 heads, 12 layers, vocab 49408, context 77
    pv, pt = params(vision), params(text)
    print(f"torch {torch.__version__}; {name}: vision {pv / 1e6:.1f} M parameters, text {pt / 1e6:.1f} M parameters", flush=True)
    if not a.tiny:
        ok = 85e6 <= pv <= 91e6 and 60e6 <= pt <= 66e6
        print(f"  expected ~88 M / ~63 M: {'ok' if ok else 'MISMATCH'}", flush=True)
        if not ok:
            sys.exit(1)
    # FLOPs of the vision tower (multiply-adds x 2), for the record
    w, L, n = (64, 2, 50) if a.tiny else (768, 12, 50)
    macs = 3 * 32 * 32 * w * 49 + L * (n * w * 3 * w + 2 * n * n * w + n * w * w + 2 * n * w * 4 * w) + w * 512
    print(f"  vision: {2 * macs / 1e9:.2f} GFLOP per image", flush=True)

    pixel = torch.randn(2, 3, 224, 224)
    ids = torch.zeros(2, 77, dtype=torch.long)
    ids[:, 0] = 49406
    ids[0, 1:4] = torch.tensor([5, 6, 7])
    ids[0, 4] = 49407
    ids[1, 1] = 49407
    mask = (torch.arange(77)[None, :] <= torch.tensor([[4], [1]])).long()
    export(vision, (pixel,), os.path.join(out, "image.onnx"), ["pixel_values"], ["image_embeds"], a.opset)
    export(text, (ids, mask), os.path.join(out, "text.onnx"), ["input_ids", "attention_mask"], ["text_embeds"], a.opset)
    with torch.no_grad():
        ref = {"image": vision(pixel)[0, :4].tolist(), "text": text(ids, mask)[0, :4].tolist()}
    n_vocab = write_tokenizer(os.path.join(out, "tokenizer.json"), 49408)
    desc = ("Benchmark model, NOT a trained model: a CLIP ViT-B/32-shaped dual encoder with random weights "
            "(torch.manual_seed(0)), built by bench/model/build-clip.py. Its tokenizer is a synthetic whole-word WordPiece "
            f"vocabulary of {n_vocab} tokens (the real CLIP BPE vocabulary is not available offline). Scores are "
            "meaningless; use it only to measure speed.")
    if a.tiny:
        desc = desc.replace("a CLIP ViT-B/32-shaped dual encoder", "a tiny CLIP-shaped dual encoder (same inputs, outputs and preprocessing as the ViT-B/32 one)")
    with open(os.path.join(out, "model.yaml"), "w") as f:
        f.write(MANIFEST.format(name=name, desc=desc))
    write_hf_layout(out, a.tiny)
    with open(os.path.join(out, "build-info.json"), "w") as f:
        json.dump({"name": name, "seed": 0, "torch": torch.__version__, "opset": a.opset, "visionParams": pv,
                   "textParams": pt, "visionGFLOP": 2 * macs / 1e9, "reference": ref}, f, indent=2)
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
