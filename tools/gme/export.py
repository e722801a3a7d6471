#!/usr/bin/env python3
"""Export a GME-Qwen2-VL checkpoint (Hugging Face layout) to a matchd model package.

  export.py CHECKPOINT --out PACKAGE [--dtype float32|float16] [--force]

Needs Python 3 with numpy and onnx only (no torch, no transformers: safetensors are read by our own reader and the
graphs are written op by op). Everything is validated before anything is written; the package is built in a
temporary folder beside PACKAGE and renamed into place at the end, so a failure or an interrupt leaves nothing
half-written. Progress goes to stderr, one line per step. On failure the last stderr line is JSON:
  {"code": "MATCHD_MODEL_INVALID" | "MATCHD_BAD_OPTION" | "MATCHD_IMPORT_FAILED", "problems": [...]}
with exit code 2 for a checkpoint or option problem and 1 for a failure while writing.
"""
import argparse
import os
import shutil
import sys
import time

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from coded_tool import Failure, run_coded  # noqa: E402
from checkpoint_spec import expected_tensors, validate  # noqa: E402
from decoder_graph import build_decoder  # noqa: E402
from onnx_writer import GraphWriter  # noqa: E402
from package_files import EXPORTER_VERSION, import_json, model_yaml  # noqa: E402
from vision_graph import build_vision  # noqa: E402

HEADROOM = 256 << 20  # bytes of free space kept beyond the package's estimated size


def progress(message):
    print(f'export: {message}', file=sys.stderr, flush=True)


def check_out(out, force):
    if os.path.exists(out) and not os.path.isdir(out):
        raise Failure('MATCHD_BAD_OPTION', [f'--out {out} exists and is not a directory'], 2)
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise Failure('MATCHD_BAD_OPTION', [f'--out {out} exists and is not empty; pass --force to replace it'], 2)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise Failure('MATCHD_BAD_OPTION', [f'--out {out}: the folder {parent} does not exist'], 2)
    return parent


def estimated_bytes(spec, dtype):
    item = 2 if dtype == 'float16' else 4
    total = 0
    for name, shape in expected_tensors(spec).items():
        if name != 'lm_head.weight':
            n = 1
            for d in shape:
                n *= d
            total += n * item
    return total


def build_graph(path, name, builder, ckpt, spec, dtype):
    g = GraphWriter(path, name)
    try:
        builder(g, ckpt, spec, dtype, progress)
        g.save(EXPORTER_VERSION)
    finally:
        g.abort()
    # ONNX's own checker with shape inference over the written graph (not the weights): a builder mistake fails
    # here, before the package is moved into place, rather than when the runtime loads it.
    onnx.checker.check_model(path, full_check=True)
    return {'dataBytes': g.data_bytes, 'nodes': len(g.nodes)}


def export(checkpoint_dir, out, dtype, force):
    started = time.monotonic()
    parent = check_out(out, force)
    progress(f'checking {checkpoint_dir}')
    spec, ckpt, problems, warnings = validate(checkpoint_dir)
    if problems:
        raise Failure('MATCHD_MODEL_INVALID', problems, 2)
    for w in warnings:
        progress(w)
    need = estimated_bytes(spec, dtype)
    free = shutil.disk_usage(parent).free
    if free < need + HEADROOM:
        raise Failure('MATCHD_IMPORT_FAILED', [f'not enough disk space in {parent}: the package needs about '
                                               f'{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are free'], 1)
    progress(f'{spec.layout} key layout, {", ".join(ckpt.dtypes)} tensors; writing a {dtype} package '
             f'(about {need / 2**30:.2f} GiB)')

    tmp = os.path.join(parent, f'.{os.path.basename(os.path.abspath(out))}.partial-{os.getpid()}')
    os.mkdir(tmp)
    try:
        graphs = {
            'vision.onnx': build_graph(os.path.join(tmp, 'vision.onnx'), 'gme_vision', build_vision, ckpt, spec, dtype),
            'decoder.onnx': build_graph(os.path.join(tmp, 'decoder.onnx'), 'gme_decoder', build_decoder, ckpt, spec, dtype),
        }
        shutil.copyfile(os.path.join(checkpoint_dir, 'tokenizer.json'), os.path.join(tmp, 'tokenizer.json'))
        with open(os.path.join(tmp, 'model.yaml'), 'w', encoding='utf-8') as f:
            f.write(model_yaml(spec, checkpoint_dir, dtype))
        with open(os.path.join(tmp, 'import.json'), 'w', encoding='utf-8') as f:
            f.write(import_json(spec, ckpt, checkpoint_dir, dtype, graphs, time.monotonic() - started))
        ckpt.close()
        replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f'wrote {out} in {time.monotonic() - started:.1f} s')


def replace(tmp, out):
    """Move the finished package into place; an existing --out (empty, or --force) goes only once the new one is
    complete, so an interrupted replacement keeps one of the two."""
    old = None
    if os.path.isdir(out):
        old = f'{tmp}.old'
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old:
            os.rename(old, out)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description='Export a GME-Qwen2-VL checkpoint to a matchd model package.')
    p.add_argument('checkpoint')
    p.add_argument('--out', required=True)
    p.add_argument('--dtype', choices=['float32', 'float16'], default='float32')
    p.add_argument('--force', action='store_true', help='replace a non-empty --out')
    a = p.parse_args(argv)

    def body():
        export(a.checkpoint, a.out, a.dtype, a.force)
        return 0
    return run_coded(body)


if __name__ == '__main__':
    sys.exit(main())
