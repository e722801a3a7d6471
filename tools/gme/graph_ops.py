"""Building blocks shared by the vision and decoder graphs, in one place so that both use the same precision policy.

Precision policy (the `float16` package): weights and the matrix products run in float16; the residual stream,
LayerNorm / RMSNorm, rotary embeddings, softmax and the final pooling + L2 norm stay float32 (the islands where
float16 loses accuracy or range). Graph inputs and outputs are float32 in both packages. With `float32` every Cast
below is skipped, so the float32 graph is a plain float32 graph.
"""
import math

import numpy as np
from onnx import TensorProto

FLOAT, FLOAT16, INT64, BOOL = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.BOOL


def inverse_frequencies(dim, theta):
    """RoPE's 1 / theta^(2i/dim) for i < dim/2, computed in float64 and rounded once to float32."""
    return (1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))).astype(np.float32)


class Ops:
    def __init__(self, graph, checkpoint, spec, dtype):
        self.g = graph
        self.ckpt = checkpoint
        self.spec = spec
        self.half = dtype == 'float16'
        self.np_dtype = np.float16 if self.half else np.float32

    # ---- weights ----
    def load(self, name):
        """A checkpoint tensor (legacy key name) as a fresh float32 array."""
        return self.ckpt.read_float32(self.spec.key(name))

    def weight(self, name, array, keep_float32=False):
        dtype = np.float32 if keep_float32 else self.np_dtype
        return self.g.weight(name, np.ascontiguousarray(array, dtype=dtype))  # one copy: cast + C order together

    def scalar(self, value, float32=False):
        return self.g.const(np.array(value, dtype=np.float32 if float32 else self.np_dtype))

    # ---- precision islands ----
    def to_compute(self, x):
        return self.g.op('Cast', x, to=FLOAT16) if self.half else x

    def to_float32(self, x):
        return self.g.op('Cast', x, to=FLOAT) if self.half else x

    # ---- layers ----
    def linear(self, x, name, weight=None, bias=None, use_bias=True):
        """x @ W^T (+ b) in the compute dtype. `weight`/`bias` override the checkpoint tensors (e.g. a slice)."""
        w = self.load(name + '.weight') if weight is None else weight
        out = self.g.op('MatMul', x, self.weight(name + '.weight.T', w.reshape(w.shape[0], -1).T))
        del w
        if use_bias:
            b = self.load(name + '.bias') if bias is None else bias
            out = self.g.op('Add', out, self.weight(name + '.bias', b))
        return out

    def layer_norm(self, x, name, eps):
        """float32 LayerNormalization (opset 17 op; ONNX Runtime runs it as one kernel)."""
        w = self.weight(name + '.weight', self.load(name + '.weight'), keep_float32=True)
        b = self.weight(name + '.bias', self.load(name + '.bias'), keep_float32=True)
        return self.g.op('LayerNormalization', x, w, b, axis=-1, epsilon=float(eps))

    def rms_norm(self, x, name, eps):
        """float32 RMSNorm as Pow/ReduceMean/Add/Sqrt/Div/Mul, the pattern ONNX Runtime fuses to SimplifiedLayerNorm."""
        g = self.g
        var = g.op('ReduceMean', g.op('Pow', x, self.scalar(2.0, float32=True)), axes=[-1], keepdims=1)
        normed = g.op('Div', x, g.op('Sqrt', g.op('Add', var, self.scalar(eps, float32=True))))
        return g.op('Mul', normed, self.weight(name + '.weight', self.load(name + '.weight'), keep_float32=True))

    def rotary(self, x, cos, sin, head_dim):
        """x*cos + rotate_half(x)*sin over the last axis (float32), rotate_half = concat(-x[half:], x[:half])."""
        g = self.g
        x1, x2 = g.op('Split', x, g.const(np.array([head_dim // 2, head_dim // 2], np.int64)), axis=-1, outputs=2)
        rotated = g.op('Concat', g.op('Neg', x2), x1, axis=-1)
        return g.op('Add', g.op('Mul', x, cos), g.op('Mul', rotated, sin))

    def attention(self, q, k_t, v, head_dim, bias=None):
        """softmax(q k^T / sqrt(d) + bias) v. q, v: [..., L, d] and k_t: [..., d, L] in the compute dtype; the
        scale is applied to q (float32) by the caller's rotary step; softmax in float32."""
        g = self.g
        scores = self.to_float32(g.op('MatMul', q, k_t))
        if bias is not None:
            scores = g.op('Add', scores, bias)
        probs = self.to_compute(g.op('Softmax', scores, axis=-1))
        return g.op('MatMul', probs, v)

    def scale_rotate(self, x, cos, sin, head_dim, scale=False):
        """Rotary (and optionally the 1/sqrt(d) attention scale) in float32, back to the compute dtype."""
        x = self.rotary(self.to_float32(x), cos, sin, head_dim)
        if scale:
            x = self.g.op('Mul', x, self.scalar(1.0 / math.sqrt(head_dim), float32=True))
        return self.to_compute(x)

    def quick_gelu(self, x):
        return self.g.op('Mul', x, self.g.op('Sigmoid', self.g.op('Mul', x, self.scalar(1.702))))

    def gelu(self, x):
        """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in the pattern ONNX Runtime fuses to Gelu."""
        g = self.g
        erf = g.op('Erf', g.op('Div', x, self.scalar(math.sqrt(2.0))))
        return g.op('Mul', g.op('Mul', x, g.op('Add', erf, self.scalar(1.0))), self.scalar(0.5))

    def silu(self, x):
        return self.g.op('Mul', x, self.g.op('Sigmoid', x))
