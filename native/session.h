// Session: one ONNX model loaded in ONNX Runtime. Loading and running happen on engine threads (engine_threads.h).
#pragma once

#include <napi.h>
#include <onnxruntime_cxx_api.h>

#include <memory>
#include <string>
#include <vector>

namespace matchd {

/** Input/output metadata read once at load time. */
struct IoInfo {
  std::string name;
  bool isTensor = true;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;           // -1 for dynamic dims
  std::vector<std::string> symbolic;    // dim_param names ('' when none)
};

/** Options as native.ts flattens them; validated there, re-checked cheaply here. */
struct SessionConfig {
  std::string path;
  std::string provider = "cpu";  // cpu | cuda
  int deviceId = 0;
  int intraOpThreads = 0;        // 0 = ORT default
  int interOpThreads = 0;
  bool parallelExecution = false;
  GraphOptimizationLevel optLevel = ORT_ENABLE_ALL;
  bool allowSpinning = false;
  bool cpuMemArena = true;
  bool memPattern = true;
  size_t cudaMemLimit = 0;       // 0 = no limit
  int cudaArenaExtendStrategy = 0;
  OrtCudnnConvAlgoSearch cudnnConvAlgoSearch = OrtCudnnConvAlgoSearchExhaustive;
  // Write the optimised graph here while loading ('' = do not). Its initializers of 1 KiB or more go to
  // `saveExternalData` in the same folder, pre-packed weights too when `savePrepacked` (engine.ts's graph cache).
  std::string saveOptimizedPath;
  std::string saveExternalData;
  bool savePrepacked = false;
};

/** What a load produced, handed from the worker thread to the JS constructor. */
struct LoadedModel {
  std::shared_ptr<Ort::Env> env;
  std::unique_ptr<Ort::Session> session;
  std::vector<IoInfo> inputs, outputs;
  std::string provider;
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Define(Napi::Env env);
  /** `loadSession(options)`: Promise<Session>, the model parsed and optimised off the event loop. */
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit Session(const Napi::CallbackInfo& info);

  Ort::Session& ort() { return *model_->session; }
  const LoadedModel& model() const { return *model_; }
  /** A run keeps the model alive: the JS object may be finalised while the run is still on its engine thread. */
  std::shared_ptr<LoadedModel> shared() const { return model_; }
  void RunFinished() { activeRuns_--; }

 private:
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetInputs(const Napi::CallbackInfo& info);
  Napi::Value GetOutputs(const Napi::CallbackInfo& info);
  Napi::Value GetProvider(const Napi::CallbackInfo& info);
  Napi::Value GetActiveRuns(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);

  std::shared_ptr<LoadedModel> model_;
  int activeRuns_ = 0;
};

}  // namespace matchd
