#include "errors.h"

#include "addon_data.h"

namespace matchd {

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  AddonData* data = GetData(env);
  if (data != nullptr && !data->errorCtor.IsEmpty()) {
    Napi::Object err = data->errorCtor.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

}  // namespace matchd
