"""Build an ONNX graph node by node with onnx.helper, streaming every weight straight into the graph's external-data
file as it is added.

Why not torch.onnx.export: tracing needs the whole model materialised in torch and then a serialised copy of it
(a 2B model in float32 is ~8.8 GB, twice over on a 24 GB machine), and it emits whatever the installed torch version
decides. Writing the graph ourselves keeps peak memory at about one tensor, pins the op set (standard ONNX, opset 17,
no contrib ops, so ONNX Runtime's own optimiser fuses what it knows: LayerNormalization, SimplifiedLayerNorm, Gelu,
MatMul+Add...), and depends on no torch version at all.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the newest the onnx 1.12 of Debian bookworm writes; ONNX Runtime reads it
ALIGN = 4096    # page-aligned offsets let ONNX Runtime memory-map weights straight from the .data file

NP_TO_ONNX = {np.dtype('float32'): TensorProto.FLOAT, np.dtype('float16'): TensorProto.FLOAT16,
              np.dtype('int64'): TensorProto.INT64, np.dtype('bool'): TensorProto.BOOL}


class GraphWriter:
    """Nodes, inputs and outputs in memory (small); weights appended to `<model>.data` as they come."""

    def __init__(self, model_path, name):
        self.model_path = model_path
        self.name = name
        self.data_name = os.path.basename(model_path) + '.data'
        self._data = open(os.path.join(os.path.dirname(model_path), self.data_name), 'wb')
        self._offset = 0
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._counter = 0
        self._consts = {}
        self.scope = ''

    # ---- weights and constants ----
    def weight(self, name, array):
        """A large initializer: its bytes go to the external-data file now; only a reference stays in the graph."""
        return self.weight_blocks(name, array.dtype, array.shape, [array])

    def weight_blocks(self, name, dtype, shape, blocks):
        """Like weight(), for a tensor given as C-ordered blocks along its first axis (each cast to `dtype`)."""
        pad = -self._offset % ALIGN
        if pad:
            self._data.write(b'\0' * pad)
            self._offset += pad
        start = self._offset
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=dtype)
            self._data.write(memoryview(block.reshape(-1)).cast('B'))
            self._offset += block.nbytes
        length = self._offset - start
        if length != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise ValueError(f'{name}: blocks hold {length} bytes, not the {list(shape)} {np.dtype(dtype).name} tensor')
        t = TensorProto()
        t.name = name
        t.data_type = NP_TO_ONNX[np.dtype(dtype)]
        t.dims.extend(shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (('location', self.data_name), ('offset', str(start)), ('length', str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = k, v
        self.initializers.append(t)
        return name

    def const(self, value, dtype=None):
        """A small constant kept inside the graph (shapes, scalars, axes); equal constants are shared."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = f'const_{len(self._consts)}'
            self.initializers.append(numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    # ---- nodes ----
    def op(self, op_type, *inputs, outputs=1, **attrs):
        """Add one node; returns its output name (or names when outputs > 1). Names carry the current scope."""
        self._counter += 1
        base = f'{self.scope}{op_type}_{self._counter}'
        names = [f'{base}:{i}' for i in range(outputs)] if outputs > 1 else [base + ':0']
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=base, **attrs))
        return names if outputs > 1 else names[0]

    def _identity(self, tensor, name):
        self.nodes.append(helper.make_node('Identity', [tensor], [name], name=f'output_{name}'))
        return name

    def input(self, name, elem_type, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, tensor, name, elem_type, shape):
        self._identity(tensor, name)
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    # ---- finishing ----
    def save(self, producer_version):
        """Write the .onnx (graph + references); the .data file already holds every weight."""
        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                                  producer_name='matchd tools/gme/export.py', producer_version=producer_version)
        model.ir_version = IR_VERSION
        with open(self.model_path, 'wb') as f:
            f.write(model.SerializeToString())
            f.flush()
            os.fsync(f.fileno())

    def abort(self):
        if not self._data.closed:
            self._data.close()

    @property
    def data_bytes(self):
        return self._offset
