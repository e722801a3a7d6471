// Coded errors crossing N-API. The codes are the catalogue in src/core/errors.ts.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace matchd {

inline constexpr const char* kBadInput = "MATCHD_BAD_INPUT";
inline constexpr const char* kModelLoad = "MATCHD_MODEL_LOAD";
inline constexpr const char* kCudaUnavailable = "MATCHD_CUDA_UNAVAILABLE";
inline constexpr const char* kSessionBusy = "MATCHD_SESSION_BUSY";
inline constexpr const char* kSessionDisposed = "MATCHD_SESSION_DISPOSED";
inline constexpr const char* kRunFailed = "MATCHD_RUN_FAILED";
inline constexpr const char* kImageTooLarge = "MATCHD_IMAGE_TOO_LARGE";
inline constexpr const char* kInternal = "MATCHD_INTERNAL";

/** A failure with its code, thrown inside the addon and turned into a JS error at the boundary. */
class CodedError : public std::runtime_error {
 public:
  CodedError(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

/** Build the JS error: the MatchdError class handed over by native.ts when set, else Error with `.code`. */
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message);

/** Throw a CodedError unless `cond` holds. */
#define MATCHD_REQUIRE(cond, code, msg)                  \
  do {                                                   \
    if (!(cond)) throw ::matchd::CodedError((code), (msg)); \
  } while (0)

/**
 * Wrap an N-API entry point body: CodedError, Ort::Exception and std::exception become a coded JS error.
 * Usage: return Guard(env, [&] { ...; return value; });
 */
template <typename F>
auto Guard(Napi::Env env, const char* fallbackCode, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const CodedError& e) {
    throw MakeError(env, e.code(), e.what());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw MakeError(env, fallbackCode, e.what());
  }
}

}  // namespace matchd
