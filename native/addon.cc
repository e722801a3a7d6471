// Module entry: per-environment state, and the functions native.ts declares.
#include <napi.h>

#include "addon_data.h"
#include "errors.h"
#include "preprocess.h"
#include "resample.h"
#include "sd_notify.h"
#include "session.h"
#include "vision_patches.h"

namespace matchd {

namespace {

/** `setErrorClass(MatchdError)`: native failures then arrive as that class, with `.code`. */
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 1 && info[0].IsFunction(), kBadInput, "setErrorClass expects a constructor");
    GetData(env)->errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
    return env.Undefined();
  });
}

/** Guarded like every entry point: a failure inside ORT (e.g. listing providers) is a coded error, not a crash. */
Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kInternal, [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("onnxruntime", Ort::GetVersionString());
    o.Set("ortApi", ORT_API_VERSION);
    Napi::Array providers = Napi::Array::New(env);
    uint32_t i = 0;
    for (const std::string& p : Ort::GetAvailableProviders()) providers.Set(i++, p);
    o.Set("providers", providers);
    return o;
  });
}

/**
 * `stopEngine()`: native.ts calls it on the process's 'exit' event, before exit() runs any C++ destructor. Runs still
 * in progress are terminated through ORT and the engine threads joined. The atexit hook of engine_threads.cc comes
 * too late for this: ORT's function-local statics (its type singletons) are registered when first used, during a
 * load or run, so after that hook, and exit() destroys them first, under the running kernel.
 */
Napi::Value StopEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kInternal, [&]() -> Napi::Value {
    AddonData* data = GetData(env);
    if (data->engine) data->engine->Shutdown();
    return env.Undefined();
  });
}

Napi::Object InitImpl(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by N-API when this environment goes away
  Napi::Function ctor = Session::Define(env);
  data->sessionCtor = Napi::Persistent(ctor);
  exports.Set("Session", ctor);
  exports.Set("loadSession", Napi::Function::New(env, Session::Load, "loadSession"));
  exports.Set("packImages", Napi::Function::New(env, PackImagesJs, "packImages"));
  exports.Set("resizeImage", Napi::Function::New(env, ResizeImageJs, "resizeImage"));
  exports.Set("packVisionPatches", Napi::Function::New(env, PackVisionPatchesJs, "packVisionPatches"));
  exports.Set("float16ToFloat32", Napi::Function::New(env, HalfToFloatJs, "float16ToFloat32"));
  exports.Set("float32ToFloat16", Napi::Function::New(env, FloatToHalfJs, "float32ToFloat16"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("versions", Napi::Function::New(env, Versions, "versions"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotifyJs, "sdNotify"));
  exports.Set("stopEngine", Napi::Function::New(env, StopEngine, "stopEngine"));
  return exports;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) { return InitImpl(env, exports); }

}  // namespace matchd

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return matchd::Init(env, exports); }

NODE_API_MODULE(matchd, InitModule)
