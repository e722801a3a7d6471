/**
 * A lazy reader of ONNX files (protobuf wire format, read with positional reads): the graph's inputs, outputs,
 * nodes and initializers (names, types, shapes, where their bytes are) without loading the weights, so that a
 * 1.7 GB model is summarised in milliseconds and a scalar such as SigLIP's logit_bias can be read on its own. Also
 * records where every field sits in the file, so that a subgraph can be written out byte for byte (onnx-extract.ts).
 *
 * Field numbers are onnx.proto's (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto).
 */
import fs from 'node:fs';
import path from 'node:path';

/** A byte range [start, end) in the file. */
export interface Span {
  start: number;
  end: number;
}

export interface OnnxValueInfo {
  name: string;
  /** 'float32', 'float16', 'int64'... or 'type N' for others. */
  type: string;
  /** Fixed sizes as numbers, named dimensions as strings, unknown as null. */
  shape: (number | string | null)[];
  /** The whole field (tag included), for copying. */
  field: Span;
}

export interface OnnxTensorRef {
  name: string;
  dataType: number;
  dims: number[];
  field: Span;
  raw?: Span;
  floats?: Span;
  doubles?: Span;
  /** External data: the file (relative to the model's folder), offset and length. */
  external?: { location: string; offset: number; length: number | null };
}

export interface OnnxNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** Names read by nodes of subgraphs (If / Loop bodies): the node depends on them too. */
  captured: string[];
  /** Constant nodes: the value tensor. */
  value?: OnnxTensorRef;
  field: Span;
}

export interface OnnxFile {
  path: string;
  size: number;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensorRef>;
  /** ModelProto fields other than the graph, and GraphProto fields that are neither nodes, initializers nor IO. */
  modelFields: { field: number; span: Span }[];
  graphFields: { field: number; span: Span }[];
  /** value_info entries (shapes of intermediate tensors). */
  valueInfo: OnnxValueInfo[];
}

const TYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16',
};

export function typeName(code: number): string {
  return TYPES[code] ?? `type ${code}`;
}

/** Not a well-formed ONNX file (the message says where it stopped making sense). */
export class OnnxFormatError extends Error {}

/** Positional reads through a small read-ahead window. */
class Bytes {
  private window = Buffer.alloc(0);
  private at = 0;

  constructor(private readonly fd: number, readonly size: number) {}

  get(pos: number, n: number): Buffer {
    if (pos < 0 || n < 0 || pos + n > this.size) throw new OnnxFormatError(`read past the end of the file (offset ${pos}, ${n} bytes)`);
    if (pos >= this.at && pos + n <= this.at + this.window.length) return this.window.subarray(pos - this.at, pos - this.at + n);
    const len = Math.min(Math.max(n, 1 << 16), this.size - pos);
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const r = fs.readSync(this.fd, buf, got, len - got, pos + got);
      if (r === 0) break;
      got += r;
    }
    this.window = buf.subarray(0, got);
    this.at = pos;
    return this.window.subarray(0, n);
  }

  varint(pos: number): [bigint, number] {
    let result = 0n;
    for (let i = 0, shift = 0n; i < 10; i++, shift += 7n) {
      const b = this.get(pos + i, 1)[0]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return [result, pos + i + 1];
    }
    throw new OnnxFormatError(`bad varint at offset ${pos}`);
  }
}

interface Field {
  field: number;
  wire: number;
  /** Tag start (for copying the whole field). */
  start: number;
  /** Payload start and end. */
  data: number;
  end: number;
  value: bigint;
}

function* fields(b: Bytes, start: number, end: number): Generator<Field> {
  let p = start;
  while (p < end) {
    const [tag, p1] = b.varint(p);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    let data = p1;
    let stop: number;
    let value = 0n;
    if (wire === 0) [value, stop] = b.varint(p1);
    else if (wire === 1) stop = p1 + 8;
    else if (wire === 5) stop = p1 + 4;
    else if (wire === 2) {
      const [len, p2] = b.varint(p1);
      data = p2;
      stop = p2 + Number(len);
    } else throw new OnnxFormatError(`unsupported protobuf wire type ${wire} at offset ${p}`);
    if (stop > end || field === 0) throw new OnnxFormatError(`malformed field at offset ${p}`);
    yield { field, wire, start: p, data, end: stop, value };
    p = stop;
  }
}

function str(b: Bytes, f: Field): string {
  return b.get(f.data, f.end - f.data).toString('utf8');
}

/** Repeated int64 (packed or not) from one field occurrence. */
function ints(b: Bytes, f: Field): number[] {
  if (f.wire === 0) return [Number(BigInt.asIntN(64, f.value))];
  const out: number[] = [];
  for (let p = f.data; p < f.end;) {
    const [v, next] = b.varint(p);
    out.push(Number(BigInt.asIntN(64, v)));
    p = next;
  }
  return out;
}

function tensor(b: Bytes, start: number, end: number, field: Span): OnnxTensorRef {
  const t: OnnxTensorRef = { name: '', dataType: 0, dims: [], field };
  let location: string | undefined;
  let offset = 0;
  let length: number | null = null;
  for (const f of fields(b, start, end)) {
    if (f.field === 1) t.dims.push(...ints(b, f));
    else if (f.field === 2) t.dataType = Number(f.value);
    else if (f.field === 8) t.name = str(b, f);
    else if (f.field === 9) t.raw = { start: f.data, end: f.end };
    else if (f.field === 4 && f.wire === 2) t.floats = { start: f.data, end: f.end };
    else if (f.field === 10 && f.wire === 2) t.doubles = { start: f.data, end: f.end };
    else if (f.field === 13) {
      let key = '';
      let value = '';
      for (const kv of fields(b, f.data, f.end)) {
        if (kv.field === 1) key = str(b, kv);
        else if (kv.field === 2) value = str(b, kv);
      }
      if (key === 'location') location = value;
      else if (key === 'offset') offset = Number(value);
      else if (key === 'length') length = Number(value);
    }
  }
  if (location !== undefined) t.external = { location, offset, length };
  return t;
}

function valueInfo(b: Bytes, f: Field): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', type: 'unknown', shape: [], field: { start: f.start, end: f.end } };
  for (const g of fields(b, f.data, f.end)) {
    if (g.field === 1) v.name = str(b, g);
    else if (g.field === 2) {
      for (const tt of fields(b, g.data, g.end)) {
        if (tt.field !== 1) continue; // tensor_type
        for (const x of fields(b, tt.data, tt.end)) {
          if (x.field === 1) v.type = typeName(Number(x.value));
          else if (x.field === 2) {
            for (const dim of fields(b, x.data, x.end)) {
              if (dim.field !== 1) continue;
              let d: number | string | null = null;
              for (const dv of fields(b, dim.data, dim.end)) {
                if (dv.field === 1) d = Number(dv.value);
                else if (dv.field === 2) d = str(b, dv);
              }
              v.shape.push(d);
            }
          }
        }
      }
    }
  }
  return v;
}

/** Every name the nodes of a subgraph (and its own subgraphs) read. */
function graphReads(b: Bytes, start: number, end: number, into: string[]): void {
  for (const f of fields(b, start, end)) {
    if (f.field !== 1) continue;
    const n = node(b, f);
    into.push(...n.inputs, ...n.captured);
  }
}

function node(b: Bytes, f: Field): OnnxNode {
  const n: OnnxNode = { opType: '', domain: '', name: '', inputs: [], outputs: [], captured: [], field: { start: f.start, end: f.end } };
  for (const g of fields(b, f.data, f.end)) {
    if (g.field === 1) n.inputs.push(str(b, g));
    else if (g.field === 2) n.outputs.push(str(b, g));
    else if (g.field === 3) n.name = str(b, g);
    else if (g.field === 4) n.opType = str(b, g);
    else if (g.field === 7) n.domain = str(b, g);
    else if (g.field === 5) {
      let attr = '';
      for (const a of fields(b, g.data, g.end)) {
        if (a.field === 1) attr = str(b, a);
        else if (a.field === 5 && attr === 'value') n.value = tensor(b, a.data, a.end, { start: a.start, end: a.end });
        else if (a.field === 6 || a.field === 11) graphReads(b, a.data, a.end, n.captured);
      }
    }
  }
  return n;
}

/** Read an ONNX file's structure. Throws OnnxFormatError (or an fs error) when it cannot. */
export function readOnnx(file: string): OnnxFile {
  const fd = fs.openSync(file, 'r');
  try {
    const b = new Bytes(fd, fs.fstatSync(fd).size);
    const m: OnnxFile = {
      path: file, size: b.size, irVersion: 0, opsets: [], inputs: [], outputs: [], nodes: [], initializers: new Map(),
      modelFields: [], graphFields: [], valueInfo: [],
    };
    let graph: Field | undefined;
    for (const f of fields(b, 0, b.size)) {
      if (f.field === 7 && f.wire === 2) graph = f;
      else {
        m.modelFields.push({ field: f.field, span: { start: f.start, end: f.end } });
        if (f.field === 1) m.irVersion = Number(f.value);
        else if (f.field === 8) {
          const o = { domain: '', version: 0 };
          for (const g of fields(b, f.data, f.end)) {
            if (g.field === 1) o.domain = str(b, g);
            else if (g.field === 2) o.version = Number(g.value);
          }
          m.opsets.push(o);
        }
      }
    }
    if (!graph || m.irVersion === 0) throw new OnnxFormatError('no graph or IR version: not an ONNX model');
    for (const f of fields(b, graph.data, graph.end)) {
      const span = { start: f.start, end: f.end };
      if (f.field === 1) m.nodes.push(node(b, f));
      else if (f.field === 5) {
        const t = tensor(b, f.data, f.end, span);
        m.initializers.set(t.name, t);
      } else if (f.field === 11) m.inputs.push(valueInfo(b, f));
      else if (f.field === 12) m.outputs.push(valueInfo(b, f));
      else if (f.field === 13) m.valueInfo.push(valueInfo(b, f));
      else m.graphFields.push({ field: f.field, span });
    }
    // Older exporters list initializers among the graph inputs: those are not inputs anyone feeds.
    m.inputs = m.inputs.filter((i) => !m.initializers.has(i.name));
    return m;
  } finally {
    fs.closeSync(fd);
  }
}

/** The external data files a model needs, relative to its folder (deduplicated). */
export function externalFiles(m: OnnxFile): string[] {
  const out = new Set<string>();
  for (const t of m.initializers.values()) if (t.external) out.add(t.external.location);
  for (const n of m.nodes) if (n.value?.external) out.add(n.value.external.location);
  return [...out];
}

/** Read the single value of a scalar (or one-element) float tensor, wherever its bytes live. */
export function readScalar(m: OnnxFile, t: OnnxTensorRef): number | null {
  if (t.dims.reduce((a, d) => a * d, 1) !== 1) return null;
  const width = t.dataType === 1 ? 4 : t.dataType === 10 ? 2 : t.dataType === 11 ? 8 : 0;
  if (width === 0) return null;
  let bytes: Buffer;
  if (t.external) {
    const file = path.resolve(path.dirname(m.path), t.external.location);
    const fd = fs.openSync(file, 'r');
    try {
      bytes = Buffer.alloc(width);
      fs.readSync(fd, bytes, 0, width, t.external.offset);
    } finally {
      fs.closeSync(fd);
    }
  } else {
    const span = t.raw ?? (t.dataType === 11 ? t.doubles : t.floats);
    if (!span || span.end - span.start < (t.raw ? width : t.dataType === 11 ? 8 : 4)) return null;
    const fd = fs.openSync(m.path, 'r');
    try {
      bytes = Buffer.alloc(8);
      fs.readSync(fd, bytes, 0, 8, span.start);
    } finally {
      fs.closeSync(fd);
    }
    // float_data holds float16 values as 32-bit words; raw_data holds them as 2 bytes.
    if (!t.raw && t.dataType === 10) return float16(bytes.readUInt32LE(0) & 0xffff);
  }
  if (t.dataType === 1) return bytes.readFloatLE(0);
  if (t.dataType === 11) return bytes.readDoubleLE(0);
  return float16(bytes.readUInt16LE(0));
}

function float16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
