// One inference: inputs pinned over JS memory, Session::Run on an engine thread, outputs back zero-copy.
#pragma once

#include <napi.h>
#include <onnxruntime_cxx_api.h>

#include <memory>
#include <string>
#include <vector>

#include "engine_threads.h"
#include "tensor.h"

namespace matchd {

class Session;
struct LoadedModel;

class RunWorker : public EngineJob {
 public:
  /** Validates feeds against the model's inputs on the main thread; throws CodedError on bad calls. */
  RunWorker(Napi::Env env, Session* session, Napi::Object self, Napi::Object feeds, Napi::Value outputs);
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override;
  void Complete(Napi::Env env) override;
  void Cancel() override { runOptions_.SetTerminate(); }

 private:
  void ReadFeeds(Napi::Object feeds);
  void ReadOutputs(Napi::Value outputs);
  void Pin(Napi::Value v);

  void OnOK(Napi::Env env);

  Napi::Env env_;
  Napi::Promise::Deferred deferred_;
  Session* session_;
  std::shared_ptr<LoadedModel> model_;  // the ORT session outlives the JS object until the run ends
  Ort::RunOptions runOptions_;
  std::vector<Napi::Reference<Napi::Value>> pins_;  // session object + every JS buffer in use
  std::vector<std::string> inNames_, outNames_;
  std::vector<Ort::Value> inValues_, outValues_;
  std::vector<Napi::Reference<Napi::Value>> outHolders_;  // caller's output objects, when preallocated
  bool preallocated_ = false;
  const char* code_ = "MATCHD_RUN_FAILED";
  std::string error_;  // set by Execute when the run failed
};

}  // namespace matchd
