#include "session.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "addon_data.h"
#include "errors.h"
#include "run_worker.h"
#include "tensor.h"

namespace matchd {

namespace {

std::vector<IoInfo> ReadIo(Ort::Session& s, bool inputs) {
  Ort::AllocatorWithDefaultOptions alloc;
  size_t n = inputs ? s.GetInputCount() : s.GetOutputCount();
  std::vector<IoInfo> out(n);
  for (size_t i = 0; i < n; i++) {
    IoInfo& io = out[i];
    io.name = (inputs ? s.GetInputNameAllocated(i, alloc) : s.GetOutputNameAllocated(i, alloc)).get();
    Ort::TypeInfo ti = inputs ? s.GetInputTypeInfo(i) : s.GetOutputTypeInfo(i);
    if (ti.GetONNXType() != ONNX_TYPE_TENSOR) {
      io.isTensor = false;
      continue;
    }
    auto tensor = ti.GetTensorTypeAndShapeInfo();
    io.type = tensor.GetElementType();
    io.shape = tensor.GetShape();
    std::vector<const char*> sym(io.shape.size(), nullptr);
    tensor.GetSymbolicDimensions(sym.data(), sym.size());
    for (const char* name : sym) io.symbolic.emplace_back(name ? name : "");
  }
  return out;
}

SessionConfig ReadConfig(Napi::Object o) {
  SessionConfig c;
  auto str = [&](const char* k, const std::string& def) {
    Napi::Value v = o.Get(k);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : def;
  };
  auto num = [&](const char* k, double def) {
    Napi::Value v = o.Get(k);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
  };
  auto flag = [&](const char* k, bool def) {
    Napi::Value v = o.Get(k);
    return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
  };
  c.path = str("path", "");
  MATCHD_REQUIRE(!c.path.empty(), kBadInput, "a model path is required");
  c.provider = str("provider", "cpu");
  MATCHD_REQUIRE(c.provider == "cpu" || c.provider == "cuda", kBadInput,
                 "provider must be 'cpu' or 'cuda' but received '" + c.provider + "'");
  c.deviceId = static_cast<int>(num("deviceId", 0));
  c.intraOpThreads = static_cast<int>(num("intraOpThreads", 0));
  c.interOpThreads = static_cast<int>(num("interOpThreads", 0));
  MATCHD_REQUIRE(c.deviceId >= 0 && c.intraOpThreads >= 0 && c.interOpThreads >= 0, kBadInput,
                 "deviceId and thread counts must be non-negative integers");
  c.parallelExecution = str("executionMode", "sequential") == "parallel";
  std::string level = str("graphOptimizationLevel", "all");
  if (level == "disabled") c.optLevel = ORT_DISABLE_ALL;
  else if (level == "basic") c.optLevel = ORT_ENABLE_BASIC;
  else if (level == "extended") c.optLevel = ORT_ENABLE_EXTENDED;
  else if (level == "all") c.optLevel = ORT_ENABLE_ALL;
  else throw CodedError(kBadInput, "unknown graphOptimizationLevel '" + level + "'");
  c.allowSpinning = flag("allowSpinning", false);
  c.cpuMemArena = flag("cpuMemArena", true);
  c.memPattern = flag("memPattern", true);
  double limit = num("cudaMemLimit", 0);
  MATCHD_REQUIRE(limit >= 0, kBadInput, "cudaMemLimit must be >= 0");
  c.cudaMemLimit = static_cast<size_t>(limit);
  c.cudaArenaExtendStrategy = str("cudaArenaExtendStrategy", "nextPowerOfTwo") == "sameAsRequested" ? 1 : 0;
  std::string search = str("cudnnConvAlgoSearch", "exhaustive");
  if (search == "heuristic") c.cudnnConvAlgoSearch = OrtCudnnConvAlgoSearchHeuristic;
  else if (search == "default") c.cudnnConvAlgoSearch = OrtCudnnConvAlgoSearchDefault;
  else c.cudnnConvAlgoSearch = OrtCudnnConvAlgoSearchExhaustive;
  c.saveOptimizedPath = str("saveOptimizedPath", "");
  c.saveExternalData = str("saveExternalData", "");
  MATCHD_REQUIRE(c.saveOptimizedPath.empty() == c.saveExternalData.empty(), kBadInput,
                 "saveOptimizedPath and saveExternalData go together");
  MATCHD_REQUIRE(c.saveExternalData.find('/') == std::string::npos, kBadInput,
                 "saveExternalData is a file name in the folder of saveOptimizedPath");
  c.savePrepacked = flag("savePrepacked", false);
  return c;
}

/** The folder ONNX Runtime loads providers from: the one holding libonnxruntime.so.1. */
std::string OrtLibDir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&OrtGetApiBase), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string file = info.dli_fname;
  size_t slash = file.rfind('/');
  return slash == std::string::npos ? "" : file.substr(0, slash + 1);
}

/**
 * ORT's own failure says only "Failed to load shared library" (the detail goes to its log), so load the
 * provider once ourselves first: dlerror() names the missing file, e.g. libcublasLt.so.13.
 */
void ProbeCudaProvider() {
  std::string path = OrtLibDir() + "libonnxruntime_providers_cuda.so";
  void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw CodedError(kCudaUnavailable, "cannot load " + path + ": " + (why ? why : "unknown dlopen error"));
  }
  dlclose(handle);
}

Ort::SessionOptions BuildOptions(const SessionConfig& c) {
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(c.intraOpThreads);
  so.SetInterOpNumThreads(c.interOpThreads);
  so.SetExecutionMode(c.parallelExecution ? ORT_PARALLEL : ORT_SEQUENTIAL);
  so.SetGraphOptimizationLevel(c.optLevel);
  // Spinning threads burn the cores that decode images; off unless asked for.
  so.AddConfigEntry("session.intra_op.allow_spinning", c.allowSpinning ? "1" : "0");
  so.AddConfigEntry("session.inter_op.allow_spinning", c.allowSpinning ? "1" : "0");
  if (!c.cpuMemArena) so.DisableCpuMemArena();
  if (!c.memPattern) so.DisableMemPattern();
  if (!c.saveOptimizedPath.empty()) {
    // Large models exceed protobuf's 2 GB, so every initializer of 1 KiB or more goes to one data file beside the
    // graph (resolved relative to it when the graph is loaded again).
    so.SetOptimizedModelFilePath(c.saveOptimizedPath.c_str());
    so.AddConfigEntry("session.optimized_model_external_initializers_file_name", c.saveExternalData.c_str());
    so.AddConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", "1024");
    if (c.savePrepacked) so.AddConfigEntry("session.save_external_prepacked_constant_initializers", "1");
  }
  if (c.provider == "cuda") {
    // The V2 entry point answers "not enabled in this build" with this core; the legacy struct loads
    // libonnxruntime_providers_cuda.so from the folder of libonnxruntime.so.1.
    OrtCUDAProviderOptions cuda;
    cuda.device_id = c.deviceId;
    cuda.gpu_mem_limit = c.cudaMemLimit == 0 ? SIZE_MAX : c.cudaMemLimit;
    cuda.arena_extend_strategy = c.cudaArenaExtendStrategy;
    cuda.cudnn_conv_algo_search = c.cudnnConvAlgoSearch;
    ProbeCudaProvider();
    try {
      so.AppendExecutionProvider_CUDA(cuda);
    } catch (const Ort::Exception& e) {
      throw CodedError(kCudaUnavailable, e.what());
    }
  }
  return so;
}

class LoadWorker : public EngineJob {
 public:
  LoadWorker(Napi::Env env, SessionConfig config, std::shared_ptr<Ort::Env> ortEnv)
      : deferred_(Napi::Promise::Deferred::New(env)), config_(std::move(config)), model_(new LoadedModel) {
    model_->env = std::move(ortEnv);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      Ort::SessionOptions so = BuildOptions(config_);
      try {
        model_->session = std::make_unique<Ort::Session>(*model_->env, config_.path.c_str(), so);
      } catch (const Ort::Exception& e) {
        std::string what = e.what();
        // With CUDA appended, a missing device or driver surfaces here, at session creation.
        bool cuda = config_.provider == "cuda" &&
                    (what.find("CUDA") != std::string::npos || what.find("cuda") != std::string::npos);
        throw CodedError(cuda ? kCudaUnavailable : kModelLoad, "cannot load model " + config_.path + ": " + what);
      }
      model_->inputs = ReadIo(*model_->session, true);
      model_->outputs = ReadIo(*model_->session, false);
      model_->provider = config_.provider;
    } catch (const CodedError& e) {
      code_ = e.code();
      error_ = e.what();
    } catch (const std::exception& e) {
      code_ = kModelLoad;
      error_ = e.what();
    }
    if (code_ != nullptr && error_.empty()) error_ = "the model could not be loaded";
  }

  void Complete(Napi::Env env) override {
    if (code_ != nullptr) {
      deferred_.Reject(MakeError(env, code_, error_).Value());
      return;
    }
    try {
      Napi::External<LoadedModel> ext = Napi::External<LoadedModel>::New(env, model_.release());
      deferred_.Resolve(GetData(env)->sessionCtor.New({ext}));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  SessionConfig config_;
  std::unique_ptr<LoadedModel> model_;
  const char* code_ = nullptr;  // set when the load failed
  std::string error_;
};

Napi::Array IoToJs(Napi::Env env, const std::vector<IoInfo>& list) {
  Napi::Array arr = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    const IoInfo& io = list[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", io.name);
    o.Set("type", io.isTensor ? OrtTypeName(io.type) : "non-tensor");
    Napi::Array shape = Napi::Array::New(env, io.shape.size());
    Napi::Array names = Napi::Array::New(env, io.shape.size());
    for (size_t d = 0; d < io.shape.size(); d++) {
      shape.Set(d, io.shape[d] < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(io.shape[d])));
      names.Set(d, io.symbolic[d].empty() ? env.Null() : Napi::String::New(env, io.symbolic[d]));
    }
    o.Set("shape", shape);
    o.Set("dimNames", names);
    arr.Set(i, o);
  }
  return arr;
}

}  // namespace

Napi::Function Session::Define(Napi::Env env) {
  return DefineClass(env, "Session",
                     {
                         // Writable: native.ts wraps it once so that a rejection carries the JS caller's stack.
                         InstanceMethod<&Session::Run>("run", napi_default_method),
                         InstanceMethod<&Session::Dispose>("dispose"),
                         InstanceAccessor<&Session::GetInputs>("inputs"),
                         InstanceAccessor<&Session::GetOutputs>("outputs"),
                         InstanceAccessor<&Session::GetProvider>("provider"),
                         InstanceAccessor<&Session::GetActiveRuns>("activeRuns"),
                         InstanceAccessor<&Session::GetDisposed>("disposed"),
                     });
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw MakeError(info.Env(), kBadInput, "Session cannot be constructed directly: use loadSession()");
  }
  model_.reset(info[0].As<Napi::External<LoadedModel>>().Data());
}

Napi::Value Session::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() >= 1 && info[0].IsObject(), kBadInput, "loadSession expects an options object");
    SessionConfig config = ReadConfig(info[0].As<Napi::Object>());
    AddonData* data = GetData(env);
    if (!data->ortEnv) {
      // ONNX Runtime >= 1.29 on Linux (this build and the official onnxruntime-node one alike) carries Microsoft's
      // 1DS telemetry client: it resolves and connects to mobile.events.data.microsoft.com, writes
      // $TMPDIR/mat-debug-PID.log and a device id under ~/.cache/Microsoft. DisableTelemetryEvents() alone does not
      // stop it; ORT_DISABLE_TELEMETRY=1, read when the first Env is created, does. Set here (process-wide, so it
      // holds for worker threads too), overriding any inherited value. test/privacy/no-outbound.test.ts proves it.
      setenv("ORT_DISABLE_TELEMETRY", "1", 1);
      data->ortEnv = std::make_shared<Ort::Env>(ORT_LOGGING_LEVEL_ERROR, "matchd");
      data->ortEnv->DisableTelemetryEvents();
    }
    auto worker = std::make_unique<LoadWorker>(env, std::move(config), data->ortEnv);
    Napi::Promise promise = worker->Promise();
    data->Engine(env).Submit(env, std::move(worker));
    return promise;
  });
}

Napi::Value Session::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(model_ != nullptr, kSessionDisposed, "the session was disposed");
    MATCHD_REQUIRE(info.Length() >= 1 && info[0].IsObject(), kBadInput, "run expects a feeds object");
    Napi::Value outputs = info.Length() >= 2 ? info[1] : env.Undefined();
    auto worker = std::make_unique<RunWorker>(env, this, info.This().As<Napi::Object>(), info[0].As<Napi::Object>(), outputs);
    activeRuns_++;
    Napi::Promise promise = worker->Promise();
    GetData(env)->Engine(env).Submit(env, std::move(worker));
    return promise;
  });
}

Napi::Value Session::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (activeRuns_ > 0) {
    throw MakeError(env, kSessionBusy,
                    "cannot dispose the session while " + std::to_string(activeRuns_) + " run(s) are in flight");
  }
  model_.reset();
  return env.Undefined();
}

Napi::Value Session::GetInputs(const Napi::CallbackInfo& info) {
  if (!model_) throw MakeError(info.Env(), kSessionDisposed, "the session was disposed");
  return IoToJs(info.Env(), model_->inputs);
}

Napi::Value Session::GetOutputs(const Napi::CallbackInfo& info) {
  if (!model_) throw MakeError(info.Env(), kSessionDisposed, "the session was disposed");
  return IoToJs(info.Env(), model_->outputs);
}

Napi::Value Session::GetProvider(const Napi::CallbackInfo& info) {
  return model_ ? Napi::String::New(info.Env(), model_->provider) : info.Env().Null();
}

Napi::Value Session::GetActiveRuns(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), activeRuns_);
}

Napi::Value Session::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), model_ == nullptr);
}

}  // namespace matchd
