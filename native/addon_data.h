// Per-environment state (main thread and each worker thread get their own), kept with SetInstanceData.
#pragma once

#include <napi.h>
#include <onnxruntime_cxx_api.h>

#include <memory>

namespace matchd {

struct AddonData {
  std::shared_ptr<Ort::Env> ortEnv;  // shared with every Session so it outlives them
  Napi::FunctionReference sessionCtor;
  Napi::FunctionReference errorCtor;  // MatchdError, set from JS
};

inline AddonData* GetData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace matchd
