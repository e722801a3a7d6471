"""The int8 form of one matrix product, in standard ONNX operators that ONNX Runtime fuses into one kernel.

    x @ W (+ b)   ->   DynamicQuantizeLinear(x) -> (xq uint8, xs, xz)
                       MatMulInteger(xq, Wq int8, xz) -> int32 -> Cast float -> Mul(_, Mul(xs, ws)) (-> Add(_, b))

Weights: symmetric int8 per output column (ws[n] = max|W[:, n]| / 127, values in [-127, 127], no zero point), so one
large column does not cost the others their precision. Activations: uint8 per tensor, range taken at run time by
DynamicQuantizeLinear (no calibration). Every product gets its own DynamicQuantizeLinear and the nodes are laid out
exactly as ONNX Runtime's MatMulIntegerToFloat + DynamicQuantizeMatMul fusions expect (the scale product as
Mul(x_scale, w_scale), the bias as the Add's second input), so at graph optimisation level 'extended' or higher the
six nodes become one DynamicQuantizeMatMul kernel (u8 x s8, VNNI / AMX where the CPU has them).
Measured on this project's benchmark CPU, this form ran 3-5x faster than float32 per product where MatMulNBits
(bits = 8) ran slower than float32 and QLinearMatMul needs calibrated activation scales (bench/quantize.ts).
"""
import numpy as np
from onnx import TensorProto, helper


def quantize_weight(w, transposed):
    """float32 [K, N] (or [N, K] when `transposed`) -> (int8 [K, N], float32 scales [N])."""
    w = np.asarray(w, dtype=np.float32)
    if transposed:
        w = w.T
    peak = np.abs(w).max(axis=0) if w.size else np.zeros(w.shape[1], np.float32)
    if not np.all(np.isfinite(peak)):
        raise ValueError('the weight holds NaN or infinite values')
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return np.ascontiguousarray(q), scale


class Names:
    """Fresh tensor and node names that collide with nothing in the graph."""

    def __init__(self, graph):
        self.taken = {t.name for t in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
        for node in graph.node:
            self.taken.update(node.output)
            self.taken.update(node.input)
            self.taken.add(node.name)

    def fresh(self, base):
        name, i = base, 1
        while name in self.taken:
            i += 1
            name = f'{base}_{i}'
        self.taken.add(name)
        return name


def int8_nodes(decision, x, y, wq_name, ws_name, names):
    """The nodes replacing `decision.node`: x @ W (+ Gemm's C) -> y."""
    base = (decision.node.name or decision.node.output[0]).replace(':', '_')
    t = lambda s: names.fresh(f'{base}/int8/{s}')  # noqa: E731
    xq, xs, xz, acc, accf, scale = t('x_q'), t('x_scale'), t('x_zero'), t('acc'), t('acc_f'), t('scale')
    out = y if decision.bias is None else t('out')
    nodes = [
        helper.make_node('DynamicQuantizeLinear', [x], [xq, xs, xz], name=t('quantize')),
        helper.make_node('MatMulInteger', [xq, wq_name, xz], [acc], name=t('matmul')),
        helper.make_node('Cast', [acc], [accf], name=t('cast'), to=TensorProto.FLOAT),
        helper.make_node('Mul', [xs, ws_name], [scale], name=t('scale_product')),
        helper.make_node('Mul', [accf, scale], [out], name=t('rescale')),
    ]
    if decision.bias is not None:
        nodes.append(helper.make_node('Add', [out, decision.bias], [y], name=t('bias')))
    return nodes


def bias_second(graph, decisions, inits):
    """Put a constant bias second in the Add that follows a quantized MatMul (torch exports Add(b, x @ W)), the order
    ONNX Runtime's fusion looks for; addition commutes, so nothing else changes."""
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    moved = 0
    for d in decisions:
        if not d.quantize or d.node.op_type != 'MatMul':
            continue
        users = consumers.get(d.node.output[0], [])
        if len(users) != 1 or users[0].op_type != 'Add' or len(users[0].input) != 2:
            continue
        add = users[0]
        a, b = add.input
        if a in inits and b == d.node.output[0] and len(inits[a].dims) >= 1:
            add.input[0], add.input[1] = b, a
            moved += 1
    return moved
