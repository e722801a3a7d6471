#include "tensor.h"

#include <sstream>

#include "errors.h"

namespace matchd {

namespace {

const DType kDTypes[] = {
    {"float32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, napi_float32_array, 4},
    {"float16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, napi_uint16_array, 2},
    {"float64", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, napi_float64_array, 8},
    {"int64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, napi_bigint64_array, 8},
    {"uint64", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, napi_biguint64_array, 8},
    {"int32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, napi_int32_array, 4},
    {"uint32", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, napi_uint32_array, 4},
    {"int16", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, napi_int16_array, 2},
    {"uint16", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, napi_uint16_array, 2},
    {"int8", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, napi_int8_array, 1},
    {"uint8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, napi_uint8_array, 1},
    {"bool", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, napi_uint8_array, 1},
};

const char* ArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

}  // namespace

const DType* DTypeByName(const std::string& name) {
  for (const DType& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DType* DTypeByOrt(ONNXTensorElementDataType type) {
  for (const DType& d : kDTypes)
    if (type == d.ort) return &d;
  return nullptr;
}

std::string OrtTypeName(ONNXTensorElementDataType type) {
  if (const DType* d = DTypeByOrt(type)) return d->name;
  if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) return "string";
  if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) return "bfloat16";
  return "onnx-type-" + std::to_string(static_cast<int>(type));
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); i++) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

JsTensor ReadJsTensor(Napi::Env env, Napi::Value value, const std::string& what) {
  MATCHD_REQUIRE(value.IsObject(), kBadInput, what + " must be an object { type, dims, data }");
  Napi::Object obj = value.As<Napi::Object>();
  JsTensor t;

  Napi::Value type = obj.Get("type");
  MATCHD_REQUIRE(type.IsString(), kBadInput, what + ": expected a string for type");
  std::string typeName = type.As<Napi::String>().Utf8Value();
  t.dtype = DTypeByName(typeName);
  MATCHD_REQUIRE(t.dtype != nullptr, kBadInput, what + ": unsupported element type '" + typeName + "'");

  Napi::Value dims = obj.Get("dims");
  MATCHD_REQUIRE(dims.IsArray(), kBadInput, what + ": expected an array of integers for dims");
  Napi::Array dimArray = dims.As<Napi::Array>();
  size_t count = 1;
  for (uint32_t i = 0; i < dimArray.Length(); i++) {
    Napi::Value d = dimArray.Get(i);
    double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    MATCHD_REQUIRE(v >= 0 && v == static_cast<double>(static_cast<int64_t>(v)) && v < 9.0e15, kBadInput,
                   what + ": dims must be non-negative integers");
    t.dims.push_back(static_cast<int64_t>(v));
    count *= static_cast<size_t>(v);
  }

  Napi::Value data = obj.Get("data");
  MATCHD_REQUIRE(data.IsTypedArray(), kBadInput, what + ": data must be a TypedArray");
  Napi::TypedArray array = data.As<Napi::TypedArray>();
  napi_typedarray_type at = array.TypedArrayType();
  bool ok = at == t.dtype->array || (at == napi_uint8_clamped_array && t.dtype->array == napi_uint8_array);
  MATCHD_REQUIRE(ok, kBadInput,
                 what + ": " + typeName + " data must be a " + ArrayName(t.dtype->array) + " but received a " +
                     ArrayName(at));
  MATCHD_REQUIRE(array.ElementLength() == count, kBadInput,
                 what + ": dims " + ShapeToString(t.dims) + " need " + std::to_string(count) +
                     " elements but data has " + std::to_string(array.ElementLength()));
  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  MATCHD_REQUIRE(count == 0 || buffer.Data() != nullptr, kBadInput, what + ": data's buffer is detached");
  t.data = static_cast<uint8_t*>(buffer.Data()) + array.ByteOffset();
  t.byteLength = array.ByteLength();
  t.holder = data;
  (void)env;
  return t;
}

Ort::Value WrapCpuTensor(const JsTensor& t) {
  static const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault);
  return Ort::Value::CreateTensor(cpu, t.data, t.byteLength, t.dims.data(), t.dims.size(), t.dtype->ort);
}

Napi::Object OutputToJs(Napi::Env env, Ort::Value value) {
  MATCHD_REQUIRE(value.IsTensor(), kRunFailed, "the model returned a non-tensor output, which is not supported");
  auto info = value.GetTensorTypeAndShapeInfo();
  ONNXTensorElementDataType ortType = info.GetElementType();
  const DType* dtype = DTypeByOrt(ortType);
  MATCHD_REQUIRE(dtype != nullptr, kRunFailed, "unsupported output element type " + OrtTypeName(ortType));
  std::vector<int64_t> shape = info.GetShape();
  size_t count = info.GetElementCount();
  size_t bytes = count * dtype->bytes;

  Napi::ArrayBuffer buffer;
  if (bytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    void* data = value.GetTensorMutableRawData();
    auto* owner = new Ort::Value(std::move(value));
    buffer = Napi::ArrayBuffer::New(
        env, data, bytes, [](Napi::Env, void*, Ort::Value* v) { delete v; }, owner);
  }
  Napi::TypedArray array;
  switch (dtype->array) {
    case napi_float32_array: array = Napi::Float32Array::New(env, count, buffer, 0); break;
    case napi_float64_array: array = Napi::Float64Array::New(env, count, buffer, 0); break;
    case napi_uint16_array: array = Napi::Uint16Array::New(env, count, buffer, 0); break;
    case napi_int16_array: array = Napi::Int16Array::New(env, count, buffer, 0); break;
    case napi_int32_array: array = Napi::Int32Array::New(env, count, buffer, 0); break;
    case napi_uint32_array: array = Napi::Uint32Array::New(env, count, buffer, 0); break;
    case napi_int8_array: array = Napi::Int8Array::New(env, count, buffer, 0); break;
    case napi_uint8_array: array = Napi::Uint8Array::New(env, count, buffer, 0); break;
    case napi_bigint64_array: array = Napi::BigInt64Array::New(env, count, buffer, 0); break;
    case napi_biguint64_array: array = Napi::BigUint64Array::New(env, count, buffer, 0); break;
    default: throw CodedError(kInternal, "no TypedArray for output type");
  }
  Napi::Array dims = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); i++) dims.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", dtype->name);
  out.Set("dims", dims);
  out.Set("data", array);
  return out;
}

}  // namespace matchd
