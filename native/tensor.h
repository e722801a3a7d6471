// Element types, and tensors over JS memory (in) or handed to JS as external buffers (out).
#pragma once

#include <napi.h>
#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace matchd {

struct DType {
  const char* name;                // 'float32', 'float16', ...
  ONNXTensorElementDataType ort;
  napi_typedarray_type array;      // the TypedArray that carries it
  size_t bytes;
};

/** The supported element types; nullptr when unknown. */
const DType* DTypeByName(const std::string& name);
const DType* DTypeByOrt(ONNXTensorElementDataType type);

/** Name of an ORT element type, also for ones we do not support (for messages). */
std::string OrtTypeName(ONNXTensorElementDataType type);

std::string ShapeToString(const std::vector<int64_t>& shape);

/** A tensor described by JS: `{ type, dims, data }`, validated, pointing into the TypedArray's memory. */
struct JsTensor {
  const DType* dtype = nullptr;
  std::vector<int64_t> dims;
  void* data = nullptr;
  size_t byteLength = 0;
  Napi::Value holder;  // the TypedArray, to pin for the run
};

/** Read and check `{ type, dims, data }`; `what` names it in errors ("input 'x'"). */
JsTensor ReadJsTensor(Napi::Env env, Napi::Value value, const std::string& what);

/** An Ort::Value over the JS memory: no copy. The caller keeps `holder` referenced while it is used. */
Ort::Value WrapCpuTensor(const JsTensor& t);

/** Hand an ORT-owned output to JS without copying: an external ArrayBuffer whose finalizer releases it. */
Napi::Object OutputToJs(Napi::Env env, Ort::Value value);

}  // namespace matchd
