// Per-environment state (main thread and each worker thread get their own), kept with SetInstanceData.
#pragma once

#include <napi.h>
#include <onnxruntime_cxx_api.h>

#include <memory>

#include "engine_threads.h"

namespace matchd {

struct AddonData {
  std::shared_ptr<Ort::Env> ortEnv;  // shared with every Session so it outlives them
  Napi::FunctionReference sessionCtor;
  Napi::FunctionReference errorCtor;  // MatchdError, set from JS
  std::unique_ptr<EngineThreads> engine;  // made at the first load; joined when the environment goes away

  EngineThreads& Engine(Napi::Env env) {
    if (!engine) engine = std::make_unique<EngineThreads>(env);
    return *engine;
  }
};

inline AddonData* GetData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace matchd
