"""Initializers in and out, without ever holding a large model in memory.

Reading: an initializer stored inside the .onnx is decoded by onnx's numpy_helper; one stored as external data is
memory-mapped straight from its file (offset, length), so a 6 GB decoder is read one tensor at a time.
Writing: `embedded` keeps every tensor inside the new .onnx (for graphs that were self-contained and stay far below
protobuf's 2 GB); `external` writes every tensor of 1 KiB or more to `<model>.data` at page-aligned offsets (ONNX
Runtime memory-maps them), and copies unchanged tensors byte for byte in chunks rather than decoding them.
"""
import os

import numpy as np
from onnx import TensorProto, numpy_helper

ALIGN = 4096
SMALL = 1024          # bytes: tensors below this stay inside the graph even in external mode
CHUNK = 64 << 20      # bytes per read when copying external data

ONNX_TO_NP = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64,
              TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.INT16: np.int16,
              TensorProto.UINT16: np.uint16, TensorProto.INT32: np.int32, TensorProto.UINT32: np.uint32,
              TensorProto.INT64: np.int64, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_}


class Problem(Exception):
    """A model this tool cannot read as it should (named in the message)."""


def _external(t):
    return {e.key: e.value for e in t.external_data} if t.data_location == TensorProto.EXTERNAL else None


class Source:
    """The initializers of the input model, read lazily."""

    def __init__(self, model_path):
        self.dir = os.path.dirname(os.path.abspath(model_path))

    def location(self, t):
        ext = _external(t)
        if ext is None:
            return None
        loc = ext.get('location', '')
        path = os.path.normpath(os.path.join(self.dir, loc))
        if os.path.isabs(loc) or not path.startswith(self.dir + os.sep):
            raise Problem(f'initializer {t.name}: external data location {loc!r} points outside the model folder')
        offset, length = int(ext.get('offset', 0)), ext.get('length')
        size = os.path.getsize(path) if os.path.exists(path) else -1
        if size < 0:
            raise Problem(f'initializer {t.name}: external data file {loc} not found')
        length = int(length) if length is not None else size - offset
        if offset + length > size:
            raise Problem(f'initializer {t.name}: external data {loc} [{offset}, {offset + length}) runs past its end ({size} bytes)')
        return path, offset, length

    def array(self, t):
        """The tensor as a numpy array (memory-mapped, read-only, when it is external data)."""
        where = self.location(t)
        if where is None:
            return numpy_helper.to_array(t)
        path, offset, length = where
        dtype = ONNX_TO_NP.get(t.data_type)
        shape = tuple(t.dims)
        if dtype is None:
            raise Problem(f'initializer {t.name}: external data of ONNX type {t.data_type} is not supported')
        if int(np.prod(shape)) * np.dtype(dtype).itemsize != length:
            raise Problem(f'initializer {t.name}: {length} bytes of external data for shape {list(shape)}')
        return np.memmap(path, dtype=dtype, mode='r', offset=offset, shape=shape)

    def uses_external_data(self, graph):
        return any(t.data_location == TensorProto.EXTERNAL for t in graph.initializer)


class Sink:
    """Where the output model's tensors go; `finish` returns the initializers to put in the graph."""

    def __init__(self, model_path, external):
        self.external = external
        self.data_name = os.path.basename(model_path) + '.data'
        self.data_path = os.path.join(os.path.dirname(model_path), self.data_name)
        self._f = open(self.data_path, 'wb') if external else None
        self._offset = 0
        self.initializers = []

    def _reserve(self):
        pad = -self._offset % ALIGN
        if pad:
            self._f.write(b'\0' * pad)
            self._offset += pad
        return self._offset

    def _reference(self, name, data_type, dims, start, length):
        t = TensorProto()
        t.name = name
        t.data_type = data_type
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (('location', self.data_name), ('offset', str(start)), ('length', str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.initializers.append(t)

    def add_array(self, name, array):
        array = np.ascontiguousarray(array)
        if not self.external or array.nbytes < SMALL:
            self.initializers.append(numpy_helper.from_array(array, name))
            return
        start = self._reserve()
        self._f.write(memoryview(array.reshape(-1)).cast('B'))
        self._offset += array.nbytes
        self._reference(name, numpy_helper.from_array(np.zeros((), array.dtype)).data_type, array.shape, start, array.nbytes)

    def copy(self, t, source):
        """An unchanged initializer: its proto as it is, or its external bytes copied in chunks."""
        where = source.location(t)
        if where is None:
            if self.external and t.HasField('raw_data') and len(t.raw_data) >= SMALL:
                start = self._reserve()
                self._f.write(t.raw_data)
                self._offset += len(t.raw_data)
                self._reference(t.name, t.data_type, list(t.dims), start, len(t.raw_data))
            else:
                self.initializers.append(t)
            return
        path, offset, length = where
        if not self.external:  # an external tensor in embedded mode: read it in
            self.initializers.append(numpy_helper.from_array(np.array(source.array(t)), t.name))
            return
        start = self._reserve()
        with open(path, 'rb') as f:
            f.seek(offset)
            left = length
            while left:
                block = f.read(min(CHUNK, left))
                if not block:
                    raise Problem(f'initializer {t.name}: external data ended early')
                self._f.write(block)
                left -= len(block)
        self._offset += length
        self._reference(t.name, t.data_type, list(t.dims), start, length)

    def finish(self):
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        return self.initializers

    def abort(self):
        if self._f is not None and not self._f.closed:
            self._f.close()

    @property
    def data_bytes(self):
        return self._offset
