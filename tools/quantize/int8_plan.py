"""Which matrix products of a graph get int8 weights, and why the others keep float32.

A candidate is a MatMul whose B input is a float32 initializer of rank 2 (x @ W, how torch exports nn.Linear), or a
Gemm with a float32 initializer B, transA = 0 and alpha = beta = 1. It is quantized unless:
  - the weight also feeds another node that is not such a product (e.g. a Gather of tied embeddings): it stays
    float32 for that node, and a second int8 copy would only grow the package;
  - it is smaller than `min_elements` (the activation quantization pass costs more than the int8 product saves);
  - it is an output projection: no other candidate is downstream of it (the embedding projection of CLIP/SigLIP
    towers, GME's visual merger and the decoder's last MLP). The last product decides the embedding's direction
    directly, its rounding is not averaged by later layers, and it is one product of many, so by default it keeps
    float32. (Residual connections make "reaches an output without another product" true of every layer, so the
    test is what lies downstream, not what is bypassed.)
Normalisations, attention products (activation x activation), convolutions and embeddings are not candidates.
"""
from collections import defaultdict

from onnx import TensorProto


class Decision:
    def __init__(self, node, weight, k, n, bias=None, transposed=False, reason=None):
        self.node = node              # the MatMul / Gemm NodeProto
        self.weight = weight          # initializer name of B
        self.k, self.n = k, n         # W is [K, N] once transposed back (Gemm transB = 1 stores [N, K])
        self.bias = bias              # Gemm's C (initializer name), added after the product
        self.transposed = transposed  # True when the stored B is [N, K]
        self.reason = reason          # None: quantize; else why it stays float32

    @property
    def quantize(self):
        return self.reason is None

    def as_json(self):
        d = {'node': self.node.name or self.node.output[0], 'op': self.node.op_type, 'weight': self.weight, 'shape': [self.k, self.n]}
        if self.reason:
            d['kept'] = self.reason
        return d


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.f if a.type == a.FLOAT else a.i
    return default


def _candidate(node, inits):
    """(weight, k, n, bias, transposed) for a quantizable product, else None."""
    if node.domain not in ('', 'ai.onnx') or len(node.input) < 2:
        return None
    w = inits.get(node.input[1])
    if w is None or w.data_type != TensorProto.FLOAT or len(w.dims) != 2:
        return None
    if node.op_type == 'MatMul':
        return node.input[1], w.dims[0], w.dims[1], None, False
    if node.op_type == 'Gemm':
        if _attr(node, 'transA', 0) != 0 or _attr(node, 'alpha', 1.0) != 1.0 or _attr(node, 'beta', 1.0) != 1.0:
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is not None and bias not in inits:
            return None
        trans = _attr(node, 'transB', 0) == 1
        k, n = (w.dims[1], w.dims[0]) if trans else (w.dims[0], w.dims[1])
        return node.input[1], k, n, bias, trans
    return None


def _feeds_a_product(graph, consumers, candidate_ids):
    """ids of the nodes from whose outputs some candidate product is reachable (downstream, any distance).

    graph.node is in topological order (an ONNX requirement), so one pass from the back settles every node."""
    feeds = set()
    for node in reversed(graph.node):
        for name in node.output:
            if any(id(c) in candidate_ids or id(c) in feeds for c in consumers.get(name, ())):
                feeds.add(id(node))
                break
    return feeds


def plan(graph, min_elements, keep_projection=True):
    """One Decision per candidate product, in graph order."""
    inits = {t.name: t for t in graph.initializer}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                consumers[name].append(node)
    found = [(node, _candidate(node, inits)) for node in graph.node]
    found = [(node, c) for node, c in found if c is not None]
    candidate_ids = {id(node) for node, _ in found}
    feeds_a_product = _feeds_a_product(graph, consumers, candidate_ids)
    decisions = []
    for node, (weight, k, n, bias, transposed) in found:
        d = Decision(node, weight, k, n, bias, transposed)
        uses = consumers[weight]
        if any(id(u) not in candidate_ids or u.input[1] != weight or any(i == weight for i in u.input[:1]) for u in uses):
            d.reason = 'the weight also feeds another kind of node'
        elif k * n < min_elements:
            d.reason = f'small ({k}x{n} < {min_elements} elements)'
        elif keep_projection and id(node) not in feeds_a_product:
            d.reason = 'output projection (kept float32 for accuracy)'
        decisions.append(d)
    return decisions


def has_subgraphs(graph):
    """Control flow (If / Loop / Scan) carries graphs of its own, which this tool does not rewrite."""
    return any(a.type in (a.GRAPH, a.GRAPHS) for node in graph.node for a in node.attribute)
