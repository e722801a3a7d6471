"""A strict, memory-mapped reader for Hugging Face safetensors files (our own: no safetensors/transformers package).

Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON ({name: {dtype, shape, data_offsets}, and an
optional "__metadata__"}), then the tensor bytes; offsets are relative to the end of the header.

Every file is checked up front (header size, JSON, dtypes, offsets inside the file, shape x itemsize == span) and each
problem is reported as a string, so a caller can list all of them at once. Tensors are then read one at a time from a
read-only memory map: the file is never loaded whole, so a 2B checkpoint never sits in RAM twice.
"""
import json
import mmap
import os

import numpy as np

# dtype name -> (bytes per element, numpy dtype of the stored bits)
DTYPES = {
    'F32': (4, np.dtype('<f4')),
    'F16': (2, np.dtype('<f2')),
    'BF16': (2, np.dtype('<u2')),  # bfloat16 has no numpy type: read the bits, widen in to_float32()
}
# Headers of real checkpoints are a few hundred KB; anything this large is corrupt, not a model.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class TensorInfo:
    __slots__ = ('name', 'dtype', 'shape', 'begin', 'end', 'file')

    def __init__(self, name, dtype, shape, begin, end, file):
        self.name, self.dtype, self.shape, self.begin, self.end, self.file = name, dtype, shape, begin, end, file

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


class SafetensorsFile:
    """One parsed file. `problems` lists what is wrong; `tensors` holds the entries that are themselves sound."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.tensors = {}
        self.broken = set()  # names whose header entry was itself reported as a problem
        self.header_ok = False
        self.problems = []
        self._mm = None
        self._data_start = 0
        self._parse()

    def _problem(self, msg):
        self.problems.append(f'{self.name}: {msg}')

    def _parse(self):
        try:
            size = os.path.getsize(self.path)
            with open(self.path, 'rb') as f:
                head = f.read(8)
                if len(head) < 8:
                    self._problem(f'corrupt safetensors header: the file is {size} bytes, too short for the 8-byte header length')
                    return
                n = int.from_bytes(head, 'little')
                if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                    self._problem(f'corrupt safetensors header: header length {n} does not fit the file ({size} bytes)')
                    return
                raw = f.read(n)
        except OSError as e:
            self._problem(f'cannot read: {e.strerror or e}')
            return
        try:
            header = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._problem(f'corrupt safetensors header: not valid JSON ({e})')
            return
        if not isinstance(header, dict):
            self._problem('corrupt safetensors header: the header is not a JSON object')
            return
        self.header_ok = True
        self._data_start = 8 + n
        available = size - self._data_start
        for name, entry in header.items():
            if name == '__metadata__':
                continue
            info = self._entry(name, entry, available)
            if info is not None:
                self.tensors[name] = info
            else:
                self.broken.add(name)

    def _entry(self, name, entry, available):
        if not isinstance(entry, dict):
            self._problem(f'{name}: header entry is not an object')
            return None
        dtype, shape, offsets = entry.get('dtype'), entry.get('shape'), entry.get('data_offsets')
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            self._problem(f'{name}: invalid shape {shape!r}')
            return None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            self._problem(f'{name}: invalid data_offsets {offsets!r}')
            return None
        begin, end = offsets
        if dtype not in DTYPES:
            self._problem(f'{name}: unsupported dtype {dtype!r} (supported: {", ".join(DTYPES)})')
            return None
        info = TensorInfo(name, dtype, tuple(shape), begin, end, self)
        span = end - begin
        if info.numel * DTYPES[dtype][0] != span:
            self._problem(f'{name}: shape {list(shape)} x {DTYPES[dtype][0]} bytes does not match its data span of {span} bytes')
            return None
        if end > available:
            self._problem(f'{name}: data ends at byte {self._data_start + end} but the file has only '
                          f'{self._data_start + available} bytes (truncated file?)')
            return None
        return info

    def read(self, info):
        """The tensor's stored values as a read-only numpy view into the memory map (BF16 as uint16 bits)."""
        if self._mm is None:
            with open(self.path, 'rb') as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        dt = DTYPES[info.dtype][1]
        arr = np.frombuffer(self._mm, dtype=dt, count=info.numel, offset=self._data_start + info.begin)
        return arr.reshape(info.shape)

    def release(self, begin, end):
        """Drop bytes [begin, end) of the data section from our mapping once copied: the page cache keeps them, but
        they stop counting in this process's resident memory, which then stays near one tensor for the export."""
        if self._mm is None or not hasattr(mmap, 'MADV_DONTNEED'):
            return
        start = (self._data_start + begin) // mmap.PAGESIZE * mmap.PAGESIZE
        self._mm.madvise(mmap.MADV_DONTNEED, start, self._data_start + end - start)

    def close(self):
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a view is still alive; the map closes when it is collected
            self._mm = None


def to_float32(info, stored):
    """Widen stored values to a new float32 array (BF16: the 16 bits are the top half of an IEEE float32)."""
    if info.dtype == 'BF16':
        bits = stored.astype(np.uint32)
        bits <<= 16  # in place: one new array, not two
        return bits.view(np.float32)
    return stored.astype(np.float32)


class Checkpoint:
    """All safetensors files of a checkpoint directory: one `model.safetensors`, or shards named by
    `model.safetensors.index.json`. `tensors` maps every sound key to its TensorInfo; `problems` lists the rest."""

    def __init__(self, directory):
        self.directory = directory
        self.files = []
        self.tensors = {}
        self.problems = []
        self.broken = set()       # keys already reported (bad header entry)
        self.unreadable = []      # files whose header could not be read at all
        self.weight_map = None
        self._open()

    def _open(self):
        index_path = os.path.join(self.directory, 'model.safetensors.index.json')
        weight_map = None
        if os.path.exists(index_path):
            try:
                with open(index_path, encoding='utf-8') as f:
                    weight_map = json.load(f)['weight_map']
                if not isinstance(weight_map, dict):
                    raise TypeError('weight_map is not an object')
            except (OSError, ValueError, KeyError, TypeError) as e:
                self.problems.append(f'model.safetensors.index.json: invalid ({e})')
                weight_map = None
        self.weight_map = weight_map
        if weight_map is not None:
            names = sorted(set(weight_map.values()))
        else:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith('.safetensors'))
        if not names:
            self.problems.append('no *.safetensors files found')
            return
        for name in names:
            path = os.path.join(self.directory, name)
            if os.path.basename(name) != name or not os.path.isfile(path):
                self.problems.append(f'{name}: listed in model.safetensors.index.json but missing')
                self.unreadable.append(name)
                continue
            sf = SafetensorsFile(path)
            self.files.append(sf)
            self.problems.extend(sf.problems)
            self.broken |= sf.broken
            if not sf.header_ok:
                self.unreadable.append(name)
            for key, info in sf.tensors.items():
                if key in self.tensors:
                    self.problems.append(f'{key}: stored twice ({self.tensors[key].file.name} and {name})')
                    continue
                if weight_map is not None and weight_map.get(key) not in (None, name):
                    self.problems.append(f'{key}: found in {name} but the index says {weight_map[key]}')
                self.tensors[key] = info

    def in_unreadable_file(self, key):
        """True when a missing key may simply be inside a file whose header could not be read (or that is missing)."""
        if not self.unreadable:
            return False
        if self.weight_map is None:
            return True  # no index: the key may well be in the unreadable file
        return self.weight_map.get(key) in self.unreadable

    def read_float32(self, key):
        """One tensor as a new float32 numpy array (the only copy that is made)."""
        info = self.tensors[key]
        values = to_float32(info, info.file.read(info))
        info.file.release(info.begin, info.end)
        return values

    def read_rows_float32(self, key, rows=16384):
        """Yield a tensor as float32 blocks of `rows` leading-dimension rows (big tables without a whole copy)."""
        info = self.tensors[key]
        stored = info.file.read(info)
        row_bytes = (info.end - info.begin) // max(1, info.shape[0])
        for start in range(0, info.shape[0], rows):
            stop = min(start + rows, info.shape[0])
            yield to_float32(info, stored[start:stop])
            info.file.release(info.begin + start * row_bytes, info.begin + stop * row_bytes)

    @property
    def dtypes(self):
        return sorted({i.dtype for i in self.tensors.values()})

    @property
    def nbytes(self):
        return sum(i.end - i.begin for i in self.tensors.values())

    def close(self):
        for f in self.files:
            f.close()
