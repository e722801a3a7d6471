#!/usr/bin/env python3
"""One linear layer, y = x @ W + b, written in each int8 form ONNX Runtime can run, for bench/quantize.ts to time.

  build-quant-formats.py OUT_DIR [--shapes 768x3072,3072x768,768x768]

Writes OUT_DIR/<form>_<K>x<N>.onnx for the forms below (random W, seed 0; x: float32 [M, K], M dynamic) and
OUT_DIR/formats.json describing them. Needs numpy and onnx only.
  fp32             MatMul + Add: the baseline
  mmi              DynamicQuantizeLinear + MatMulInteger + Cast + Mul(x_scale, w_scale) + Mul + Add, standard ops
                   in the layout ORT fuses to DynamicQuantizeMatMul (what `matchd model quantize` writes)
  dqmm             com.microsoft DynamicQuantizeMatMul written directly (what that fusion produces)
  nbits32a4        com.microsoft MatMulNBits, bits = 8, block 32, accuracy_level 4 (int8 activations)
  nbits128a4       the same with block 128
  nbits32a0        MatMulNBits, bits = 8, block 32, accuracy_level 0 (float activations)
  qlinear          QuantizeLinear + QLinearMatMul + DequantizeLinear: needs a calibrated activation scale (a fixed
                   one here, so its error is not comparable), timed for speed only
Weights: symmetric int8 per output column (per block for MatMulNBits).
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(out, name, nodes, inits, k, n, ms=False):
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['M', k])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['M', n])
    graph = helper.make_graph(nodes, name, [x], [y], [numpy_helper.from_array(a, k_) for k_, a in inits.items()])
    opsets = [helper.make_opsetid('', 17)] + ([helper.make_opsetid('com.microsoft', 1)] if ms else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name='bench/model/build-quant-formats.py')
    model.ir_version = 8
    onnx.save(model, os.path.join(out, f'{name}.onnx'))


def build(out, k, n, rng):
    w = (rng.standard_normal((k, n)) * 0.02).astype(np.float32)
    b = (rng.standard_normal(n) * 0.02).astype(np.float32)
    tag = f'{k}x{n}'
    ws = (np.abs(w).max(axis=0) / 127.0).astype(np.float32)
    wq = np.clip(np.rint(w / ws), -127, 127).astype(np.int8)
    save(out, f'fp32_{tag}', [helper.make_node('MatMul', ['x', 'W'], ['t']), helper.make_node('Add', ['t', 'b'], ['y'])], {'W': w, 'b': b}, k, n)
    save(out, f'mmi_{tag}', [
        helper.make_node('DynamicQuantizeLinear', ['x'], ['xq', 'xs', 'xz']),
        helper.make_node('MatMulInteger', ['xq', 'Wq', 'xz'], ['acc']),
        helper.make_node('Cast', ['acc'], ['accf'], to=TensorProto.FLOAT),
        helper.make_node('Mul', ['xs', 'ws'], ['s']),
        helper.make_node('Mul', ['accf', 's'], ['t']),
        helper.make_node('Add', ['t', 'b'], ['y'])], {'Wq': wq, 'ws': ws, 'b': b}, k, n)
    save(out, f'dqmm_{tag}', [helper.make_node('DynamicQuantizeMatMul', ['x', 'Wq', 'ws', '', 'b'], ['y'], domain='com.microsoft')],
         {'Wq': wq, 'ws': ws, 'b': b}, k, n, ms=True)
    for block, level in ((32, 4), (128, 4), (32, 0)):
        blocks = w.T.reshape(n, k // block, block)
        scale = (np.abs(blocks).max(axis=2) / 127.0).astype(np.float32)
        q = (np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        save(out, f'nbits{block}a{level}_{tag}', [helper.make_node(
            'MatMulNBits', ['x', 'B', 'S', '', '', 'b'], ['y'], domain='com.microsoft', K=k, N=n, bits=8, block_size=block,
            accuracy_level=level)], {'B': q, 'S': scale, 'b': b}, k, n, ms=True)
    save(out, f'qlinear_{tag}', [
        helper.make_node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        helper.make_node('QLinearMatMul', ['xq', 'xs', 'xz', 'Wq', 'ws', 'wz', 'ys', 'yz'], ['yq']),
        helper.make_node('DequantizeLinear', ['yq', 'ys', 'yz'], ['t']),
        helper.make_node('Add', ['t', 'b'], ['y'])],
        {'xs': np.array(8 / 255, np.float32), 'xz': np.array(128, np.uint8), 'Wq': wq, 'ws': ws, 'wz': np.zeros(n, np.int8),
         'ys': np.array(0.05, np.float32), 'yz': np.array(128, np.uint8), 'b': b}, k, n)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('--shapes', default='768x3072,3072x768,768x768')
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = [tuple(int(v) for v in s.split('x')) for s in a.shapes.split(',')]
    for k, n in shapes:
        build(a.out, k, n, rng)
    with open(os.path.join(a.out, 'formats.json'), 'w') as f:
        json.dump({'shapes': shapes, 'forms': ['fp32', 'mmi', 'dqmm', 'nbits32a4', 'nbits128a4', 'nbits32a0', 'qlinear']}, f)


if __name__ == '__main__':
    main()
