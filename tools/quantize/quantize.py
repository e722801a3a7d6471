#!/usr/bin/env python3
"""Quantize the matrix-product weights of one ONNX graph to int8 (dynamic quantization, no calibration).

  quantize.py IN.onnx OUT.onnx [--min-elements N] [--quantize-projection] [--report FILE]

Needs Python 3 with numpy and onnx only. `matchd model quantize` runs it once per graph of a package, writing into
a temporary package folder that moves into place only when every graph is done; on its own it writes OUT.onnx (and
OUT.onnx.data when IN has external data or the result would not fit in one protobuf) and removes them again on
failure. What is quantized and what keeps float32 is decided by int8_plan.py; the int8 form is int8_rewrite.py's.
The report (JSON) lists every product with its decision. Progress goes to stderr; on failure the last stderr line is
  {"code": "MATCHD_MODEL_INVALID" | "MATCHD_BAD_OPTION" | "MATCHD_IMPORT_FAILED", "problems": [...]}
with exit code 2 for a model or option problem and 1 for a failure while writing.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from coded_tool import Failure, run_coded  # noqa: E402
from int8_plan import plan  # noqa: E402
from int8_rewrite import Names, bias_second, int8_nodes, quantize_weight  # noqa: E402
from tensor_store import Problem, Sink, Source  # noqa: E402

TOOL_VERSION = '1'
PROTOBUF_LIMIT = 1 << 31
QUANTIZED_OPS = ('MatMulInteger', 'DynamicQuantizeLinear', 'QLinearMatMul', 'MatMulNBits', 'DynamicQuantizeMatMul',
                 'MatMulIntegerToFloat', 'QuantizeLinear', 'DequantizeLinear')


def progress(message):
    print(f'quantize: {message}', file=sys.stderr, flush=True)


def opset(model):
    for o in model.opset_import:
        if o.domain in ('', 'ai.onnx'):
            return o.version
    return 0


def nothing_to_quantize(src, graph, decisions):
    """Why a graph has no product to quantize, as precisely as the graph tells."""
    name = os.path.basename(src)
    ops = {n.op_type for n in graph.node}
    if ops & set(QUANTIZED_OPS):
        return f'{name} is already quantized (it has {", ".join(sorted(ops & set(QUANTIZED_OPS)))} nodes)'
    inits = {t.name: t for t in graph.initializer}
    half = [n for n in graph.node if n.op_type in ('MatMul', 'Gemm') and len(n.input) > 1 and n.input[1] in inits
            and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT16]
    if half:
        return f'{name} has float16 weights ({len(half)} products): quantize the float32 package instead'
    if decisions:
        reasons = sorted({d.reason for d in decisions})
        return f'{name}: none of its {len(decisions)} weight products can be quantized ({"; ".join(reasons)})'
    return f'{name} has no MatMul or Gemm with a float32 weight to quantize'


def quantize(src, out, min_elements, keep_projection):
    started = time.monotonic()
    try:
        model = onnx.load(src, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a file that is not a model
        raise Failure('MATCHD_MODEL_INVALID', [f'{src}: not a readable ONNX model ({type(e).__name__}: {e})'], 2)
    graph = model.graph
    if opset(model) < 11:
        raise Failure('MATCHD_MODEL_INVALID', [f'{src}: opset {opset(model)} is older than 11, the first with '
                                               'DynamicQuantizeLinear; re-export the model with a newer opset'], 2)
    decisions = plan(graph, min_elements, keep_projection)
    chosen = [d for d in decisions if d.quantize]
    if not chosen:
        raise Failure('MATCHD_MODEL_INVALID', [nothing_to_quantize(src, graph, decisions)], 2)
    source = Source(src)
    inits = {t.name: t for t in graph.initializer}
    out_bytes = sum(source.location(t)[2] if source.location(t) else t.ByteSize() for t in graph.initializer)
    external = source.uses_external_data(graph) or out_bytes > PROTOBUF_LIMIT // 2
    progress(f'{os.path.basename(src)}: {len(chosen)} of {len(decisions)} weight products to int8 '
             f'({"external data" if external else "one file"})')

    names = Names(graph)
    bias_second(graph, decisions, inits)
    # One int8 copy per (weight, layout); every product that shares a weight shares its copy.
    variants = {}
    for d in chosen:
        key = (d.weight, d.transposed)
        if key not in variants:
            variants[key] = (names.fresh(f'{d.weight}_int8'), names.fresh(f'{d.weight}_scale'))
    replaced = {id(d.node): d for d in chosen}
    nodes = []
    for node in graph.node:
        d = replaced.get(id(node))
        if d is None:
            nodes.append(node)
        else:
            wq, ws = variants[(d.weight, d.transposed)]
            nodes.extend(int8_nodes(d, node.input[0], node.output[0], wq, ws, names))
    still_used = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    originally_used = {name for node in graph.node for name in node.input}

    sink = Sink(out, external)
    try:
        done = 0
        for t in graph.initializer:
            for transposed in (False, True):
                if (t.name, transposed) in variants:
                    wq_name, ws_name = variants[(t.name, transposed)]
                    try:
                        q, scale = quantize_weight(source.array(t), transposed)
                    except ValueError as e:
                        raise Failure('MATCHD_MODEL_INVALID', [f'{src}: weight {t.name}: {e}'], 2)
                    sink.add_array(wq_name, q)
                    sink.add_array(ws_name, scale)
                    done += 1
                    if done % 24 == 0 or done == len(variants):
                        progress(f'{os.path.basename(src)}: {done}/{len(variants)} weights')
            # A float32 weight that only the replaced products read is dropped; anything else is kept as it was.
            if t.name in still_used or t.name not in originally_used:
                sink.copy(t, source)
        initializers = sink.finish()
    except BaseException:
        sink.abort()
        remove(out, sink.data_path)
        raise
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    model.producer_name, model.producer_version = 'matchd model quantize', TOOL_VERSION
    try:
        data = model.SerializeToString()
        if len(data) >= PROTOBUF_LIMIT:
            raise Failure('MATCHD_IMPORT_FAILED', [f'{out}: the graph is {len(data)} bytes, over protobuf\'s 2 GB'], 1)
        with open(out, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # ONNX's own checker with shape inference over the graph as written: a rewrite mistake fails here, not later
        # when the runtime loads the package.
        onnx.checker.check_model(out, full_check=True)
    except onnx.checker.ValidationError as e:
        remove(out, sink.data_path)
        raise Failure('MATCHD_IMPORT_FAILED', [f'{out}: the rewritten graph fails onnx.checker: {e}'], 1)
    except BaseException:
        remove(out, sink.data_path)
        raise
    return {
        'file': os.path.basename(out),
        'quantized': len(chosen),
        'products': [d.as_json() for d in decisions],
        'bytesBefore': out_bytes,
        'bytesAfter': os.path.getsize(out) + (sink.data_bytes if external else 0),
        'externalData': sink.data_name if external else None,
        'seconds': round(time.monotonic() - started, 1),
    }


def remove(*paths):
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def main(argv=None):
    p = argparse.ArgumentParser(description='Quantize the MatMul/Gemm weights of an ONNX graph to int8.')
    p.add_argument('model')
    p.add_argument('out')
    p.add_argument('--min-elements', type=int, default=16384, help='smallest weight (K x N) worth quantizing')
    p.add_argument('--quantize-projection', action='store_true', help='quantize output projections too')
    p.add_argument('--report', help='write the JSON report here (default: stdout)')
    a = p.parse_args(argv)

    def body():
        try:
            if not os.path.isfile(a.model):
                raise Failure('MATCHD_BAD_OPTION', [f'{a.model}: no such file'], 2)
            if a.min_elements < 1:
                raise Failure('MATCHD_BAD_OPTION', [f'--min-elements must be >= 1 but is {a.min_elements}'], 2)
            if os.path.exists(a.out):
                raise Failure('MATCHD_BAD_OPTION', [f'{a.out} exists; this tool never overwrites'], 2)
            np.seterr(all='raise', under='ignore')
            report = quantize(a.model, a.out, a.min_elements, not a.quantize_projection)
            text = json.dumps(report, indent=2) + '\n'
            if a.report:
                with open(a.report, 'w', encoding='utf-8') as f:
                    f.write(text)
            else:
                sys.stdout.write(text)
            return 0
        except Problem as e:
            raise Failure('MATCHD_MODEL_INVALID', [f'{a.model}: {e}'], 2) from e
    return run_coded(body)


if __name__ == '__main__':
    sys.exit(main())
