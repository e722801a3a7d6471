#include "run_worker.h"

#include "errors.h"
#include "session.h"

namespace matchd {

namespace {

const IoInfo* Find(const std::vector<IoInfo>& list, const std::string& name) {
  for (const IoInfo& io : list)
    if (io.name == name) return &io;
  return nullptr;
}

std::string Names(const std::vector<IoInfo>& list) {
  std::string s;
  for (const IoInfo& io : list) s += (s.empty() ? "" : ", ") + io.name;
  return s;
}

/** Same type, same rank, and every fixed dim equal: the checks ORT would make, with our wording and code. */
void CheckAgainst(const IoInfo& io, const JsTensor& t, const std::string& what) {
  MATCHD_REQUIRE(io.isTensor, kBadInput, what + " is not a tensor in the model");
  MATCHD_REQUIRE(t.dtype->ort == io.type, kBadInput,
                 what + " expects element type " + OrtTypeName(io.type) + " but received " + t.dtype->name);
  MATCHD_REQUIRE(t.dims.size() == io.shape.size(), kBadInput,
                 what + " expects rank " + std::to_string(io.shape.size()) + " " + ShapeToString(io.shape) +
                     " but received dims " + ShapeToString(t.dims));
  for (size_t d = 0; d < io.shape.size(); d++) {
    MATCHD_REQUIRE(io.shape[d] < 0 || io.shape[d] == t.dims[d], kBadInput,
                   what + " expects shape " + ShapeToString(io.shape) + " (-1 = any) but received dims " +
                       ShapeToString(t.dims));
  }
}

}  // namespace

RunWorker::RunWorker(Napi::Env env, Session* session, Napi::Object self, Napi::Object feeds, Napi::Value outputs)
    : env_(env), deferred_(Napi::Promise::Deferred::New(env)), session_(session), model_(session->shared()) {
  Pin(self);  // the Session cannot be collected while it runs
  ReadFeeds(feeds);
  ReadOutputs(outputs);
}

void RunWorker::Pin(Napi::Value v) { pins_.push_back(Napi::Reference<Napi::Value>::New(v, 1)); }

void RunWorker::ReadFeeds(Napi::Object feeds) {
  const LoadedModel& m = session_->model();
  Napi::Array keys = feeds.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string name = keys.Get(i).As<Napi::String>().Utf8Value();
    const IoInfo* io = Find(m.inputs, name);
    MATCHD_REQUIRE(io != nullptr, kBadInput,
                   "unknown input '" + name + "'; the model's inputs are: " + Names(m.inputs));
    std::string what = "input '" + name + "'";
    JsTensor t = ReadJsTensor(env_, feeds.Get(name), what);
    CheckAgainst(*io, t, what);
    Pin(t.holder);  // pinned: ORT reads this memory on the worker thread, no copy
    inValues_.push_back(WrapCpuTensor(t));
    inNames_.push_back(name);
  }
  for (const IoInfo& io : m.inputs) {
    bool given = false;
    for (const std::string& n : inNames_) given = given || n == io.name;
    MATCHD_REQUIRE(given, kBadInput, "missing input '" + io.name + "'");
  }
}

void RunWorker::ReadOutputs(Napi::Value outputs) {
  const LoadedModel& m = session_->model();
  if (outputs.IsUndefined() || outputs.IsNull()) {
    for (const IoInfo& io : m.outputs) outNames_.push_back(io.name);
  } else if (outputs.IsArray()) {
    Napi::Array list = outputs.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      MATCHD_REQUIRE(v.IsString(), kBadInput, "output names must be strings");
      std::string name = v.As<Napi::String>().Utf8Value();
      MATCHD_REQUIRE(Find(m.outputs, name) != nullptr, kBadInput,
                     "unknown output '" + name + "'; the model's outputs are: " + Names(m.outputs));
      outNames_.push_back(name);
    }
  } else if (outputs.IsObject()) {
    // Caller-provided buffers: ORT writes the results straight into them.
    preallocated_ = true;
    Napi::Object obj = outputs.As<Napi::Object>();
    Napi::Array keys = obj.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string name = keys.Get(i).As<Napi::String>().Utf8Value();
      const IoInfo* io = Find(m.outputs, name);
      MATCHD_REQUIRE(io != nullptr, kBadInput,
                     "unknown output '" + name + "'; the model's outputs are: " + Names(m.outputs));
      std::string what = "output '" + name + "'";
      JsTensor t = ReadJsTensor(env_, obj.Get(name), what);
      CheckAgainst(*io, t, what);
      Pin(t.holder);
      outHolders_.push_back(Napi::Reference<Napi::Value>::New(obj.Get(name), 1));
      outValues_.push_back(WrapCpuTensor(t));
      outNames_.push_back(name);
    }
  } else {
    throw CodedError(kBadInput, "outputs must be an array of names or an object of preallocated tensors");
  }
  MATCHD_REQUIRE(!outNames_.empty(), kBadInput, "no outputs requested");
}

void RunWorker::Execute() {
  // Worker thread: plain C++ data only.
  try {
    std::vector<const char*> in, out;
    for (auto& n : inNames_) in.push_back(n.c_str());
    for (auto& n : outNames_) out.push_back(n.c_str());
    Ort::Session& ort = *model_->session;
    if (preallocated_) {
      ort.Run(runOptions_, in.data(), inValues_.data(), in.size(), out.data(), outValues_.data(), out.size());
    } else {
      outValues_ = ort.Run(runOptions_, in.data(), inValues_.data(), in.size(), out.data(), out.size());
    }
  } catch (const std::exception& e) {
    code_ = kRunFailed;
    error_ = e.what();
    if (error_.empty()) error_ = "the run failed";
  }
}

void RunWorker::Complete(Napi::Env env) {
  if (!error_.empty()) {
    session_->RunFinished();
    deferred_.Reject(MakeError(env, code_, error_).Value());
    return;
  }
  OnOK(env);
}

void RunWorker::OnOK(Napi::Env env) {
  session_->RunFinished();
  try {
    Napi::Object result = Napi::Object::New(env);
    for (size_t i = 0; i < outNames_.size(); i++) {
      if (preallocated_) {
        result.Set(outNames_[i], outHolders_[i].Value());
      } else {
        result.Set(outNames_[i], OutputToJs(env, std::move(outValues_[i])));
      }
    }
    deferred_.Resolve(result);
  } catch (const CodedError& e) {
    deferred_.Reject(MakeError(env, e.code(), e.what()).Value());
  } catch (const std::exception& e) {
    deferred_.Reject(MakeError(env, kInternal, e.what()).Value());
  }
}

}  // namespace matchd
