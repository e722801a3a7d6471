"""The small files of a GME package: model.yaml (every setting the gme-qwen2-vl runtime needs) and import.json
(provenance). YAML is written by hand (no PyYAML dependency): every
string goes through json.dumps, and a JSON string is a valid YAML double-quoted scalar."""
import datetime
import hashlib
import json
import os
import platform
import re

import numpy
import onnx

EXPORTER_VERSION = '1'
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
TEMPLATE = ('<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n'
            '<|im_start|>assistant\n<|endoftext|>')


def package_name(checkpoint_dir):
    """A package name from the checkpoint folder: gme-Qwen2-VL-2B-Instruct -> gme-qwen2-vl-2b-instruct."""
    base = os.path.basename(os.path.normpath(os.path.abspath(checkpoint_dir))).lower()
    return re.sub(r'[^a-z0-9._-]+', '-', base).strip('-.') or 'gme-qwen2-vl'


def model_yaml(spec, checkpoint_dir, dtype):
    v, q = spec.vision, json.dumps
    name = package_name(checkpoint_dir)
    source = os.path.abspath(checkpoint_dir)
    lines = [
        'family: gme-qwen2-vl',
        f'name: {q(name)}',
        'version: "1"',
        f'description: {q(f"{os.path.basename(source)} imported from {source} ({dtype})")}',
        f'embeddingSize: {spec.text["hidden_size"]}',
        'normalized: true',
        'gme:',
        '  vision: { model: vision.onnx, pixelValues: pixel_values, positionIds: position_ids, output: image_embeds }',
        '  decoder: { model: decoder.onnx, inputIds: input_ids, attentionMask: attention_mask, '
        'imageEmbeds: image_embeds, output: embeddings }',
        '  tokenizer: tokenizer.json',
        f'  weights: {dtype}            # informational: graph inputs and outputs are float32 either way',
        '  image:',
        f'    patchSize: {v["patch_size"]}',
        f'    temporalPatchSize: {v["temporal_patch_size"]}',
        f'    mergeSize: {v["spatial_merge_size"]}',
        f'    mean: {q(CLIP_MEAN)}',
        f'    std: {q(CLIP_STD)}',
        f'    minPixels: {256 * 28 * 28}         # 256*784, the Qwen2-VL image processor',
        f'    maxPixels: {1280 * 28 * 28}        # 1280*784',
        f'    fetchMinPixels: {4 * 28 * 28}      # 4*784, GME\'s fetch_image',
        f'    fetchMaxPixels: {16384 * 28 * 28}  # 16384*784',
        '    maxAspectRatio: 200',
        '    exifOrientation: true     # matchd applies EXIF orientation (documented deviation); false = reference-exact',
        '  text:',
        '    maxLength: 1800',
        f'    padId: {spec.tokens["<|endoftext|>"]}',
        f'    imagePadId: {spec.tokens["<|image_pad|>"]}',
        f'    template: {q(TEMPLATE)}',
        f'    vision: {q("<|vision_start|><|image_pad|><|vision_end|>")}',
        f'    queryInstruction: {q("Find an image that matches the given text.")}',
        f'    documentInstruction: {q("You are a helpful assistant.")}',
        'score: { range: [0.1, 0.5] }',
    ]
    return '\n'.join(lines) + '\n'


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def import_json(spec, checkpoint, checkpoint_dir, dtype, graphs, seconds):
    source = os.path.abspath(checkpoint_dir)
    return json.dumps({
        'format': 1,
        'exporter': {'tool': 'matchd tools/gme/export.py', 'version': EXPORTER_VERSION, 'python': platform.python_version(),
                     'numpy': numpy.__version__, 'onnx': onnx.__version__},
        'source': {
            'dir': source,
            'configSha256': sha256(os.path.join(source, 'config.json')),
            'tokenizerSha256': sha256(os.path.join(source, 'tokenizer.json')),
            'files': [{'name': f.name, 'bytes': os.path.getsize(f.path)} for f in checkpoint.files],
            'keyLayout': spec.layout,
            'tensorDtypes': checkpoint.dtypes,
            'tiedEmbeddings': spec.tied,
        },
        'family': 'gme-qwen2-vl',
        'dtype': dtype,
        'graphs': graphs,
        'createdAt': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'seconds': round(seconds, 1),
    }, indent=2) + '\n'
