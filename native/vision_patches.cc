#include "vision_patches.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"

namespace matchd {

void PackPatches(const uint8_t* rgb, int width, int height, const PatchSpec& s, float* out) {
  // 256 values per channel: the same float32 arithmetic numpy does (rescale in float64 → float32, then
  // (x - mean) / std in float32), once per value instead of once per pixel.
  float lut[3][256];
  for (int c = 0; c < 3; c++) {
    for (int v = 0; v < 256; v++) {
      const float x = static_cast<float>(static_cast<double>(v) * (1.0 / 255.0));
      const float centred = x - s.mean[c];
      lut[c][v] = centred / s.std[c];
    }
  }
  const int p = s.patchSize, m = s.mergeSize, t = s.temporalPatchSize;
  const int gh = height / p, gw = width / p;
  const size_t plane = static_cast<size_t>(p) * p;  // values of one channel of one frame
  const size_t rowLen = 3 * t * plane;
  const size_t stride = static_cast<size_t>(width) * 3;
  float* row = out;
  for (int bh = 0; bh < gh / m; bh++) {
    for (int bw = 0; bw < gw / m; bw++) {
      for (int mh = 0; mh < m; mh++) {
        for (int mw = 0; mw < m; mw++, row += rowLen) {
          const size_t y0 = static_cast<size_t>(bh * m + mh) * p, x0 = static_cast<size_t>(bw * m + mw) * p;
          for (int c = 0; c < 3; c++) {
            float* dst = row + static_cast<size_t>(c) * t * plane;
            const float* l = lut[c];
            for (int py = 0; py < p; py++) {
              const uint8_t* src = rgb + (y0 + py) * stride + x0 * 3 + c;
              float* d = dst + static_cast<size_t>(py) * p;
              for (int px = 0; px < p; px++) d[px] = l[src[px * 3]];
            }
            // The processor tiles a still image to temporalPatchSize identical frames.
            for (int f = 1; f < t; f++) std::memcpy(dst + f * plane, dst, plane * sizeof(float));
          }
        }
      }
    }
  }
}

namespace {

class PatchWorker : public Napi::AsyncWorker {
 public:
  PatchWorker(Napi::Env env, const uint8_t* rgb, int width, int height, PatchSpec spec, float* out,
              std::vector<Napi::Value> pins)
      : Napi::AsyncWorker(env, "matchd:patches"), deferred_(Napi::Promise::Deferred::New(env)), rgb_(rgb),
        width_(width), height_(height), spec_(spec), out_(out) {
    for (Napi::Value v : pins) pins_.push_back(Napi::Reference<Napi::Value>::New(v, 1));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { PackPatches(rgb_, width_, height_, spec_, out_); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), kInternal, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const uint8_t* rgb_;
  int width_, height_;
  PatchSpec spec_;
  float* out_;
  std::vector<Napi::Reference<Napi::Value>> pins_;
};

int PositiveInt(Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  MATCHD_REQUIRE(d >= 1 && d <= (1 << 24) && d == std::floor(d), kBadInput,
                 what + "." + key + " must be a positive integer");
  return static_cast<int>(d);
}

void ReadTriple(Napi::Object o, const char* key, float (&dst)[3]) {
  Napi::Value v = o.Get(key);
  MATCHD_REQUIRE(v.IsArray() && v.As<Napi::Array>().Length() == 3, kBadInput,
                 std::string("spec.") + key + " must be an array of 3 numbers");
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value e = v.As<Napi::Array>().Get(i);
    MATCHD_REQUIRE(e.IsNumber(), kBadInput, std::string("spec.") + key + " must be an array of 3 numbers");
    dst[i] = static_cast<float>(e.As<Napi::Number>().DoubleValue());  // numpy's float64 → float32 rounding
  }
}

}  // namespace

Napi::Value PackVisionPatchesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 3 && info[0].IsObject() && info[1].IsTypedArray() && info[2].IsObject(),
                   kBadInput, "packVisionPatches(image, out, spec): expected an object, a Float32Array and an object");
    Napi::Object img = info[0].As<Napi::Object>();
    Napi::TypedArray out = info[1].As<Napi::TypedArray>();
    Napi::Object so = info[2].As<Napi::Object>();
    MATCHD_REQUIRE(out.TypedArrayType() == napi_float32_array, kBadInput, "out must be a Float32Array");

    PatchSpec spec;
    spec.patchSize = PositiveInt(so, "patchSize", "spec");
    spec.temporalPatchSize = PositiveInt(so, "temporalPatchSize", "spec");
    spec.mergeSize = PositiveInt(so, "mergeSize", "spec");
    ReadTriple(so, "mean", spec.mean);
    ReadTriple(so, "std", spec.std);
    for (float sd : spec.std) MATCHD_REQUIRE(sd != 0.0f, kBadInput, "spec.std must not contain 0");
    Napi::Value off = so.Get("offset");
    double offset = off.IsUndefined() ? 0 : off.IsNumber() ? off.As<Napi::Number>().DoubleValue() : -1;
    MATCHD_REQUIRE(offset >= 0 && offset == std::floor(offset), kBadInput,
                   "spec.offset (the first patch row to write) must be an integer >= 0");

    const int width = PositiveInt(img, "width", "image"), height = PositiveInt(img, "height", "image");
    Napi::Value ch = img.Get("channels");
    MATCHD_REQUIRE(ch.IsNumber() && ch.As<Napi::Number>().Int32Value() == 3, kBadInput,
                   "image.channels must be 3 (RGB)");
    const int unit = spec.patchSize * spec.mergeSize;
    MATCHD_REQUIRE(width % unit == 0 && height % unit == 0, kBadInput,
                   "image is " + std::to_string(width) + "x" + std::to_string(height) +
                       " but both sides must be multiples of patchSize*mergeSize = " + std::to_string(unit));
    Napi::Value data = img.Get("data");
    MATCHD_REQUIRE(data.IsTypedArray() && (data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array ||
                                           data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_clamped_array),
                   kBadInput, "image.data must be a Uint8Array (a Buffer is one)");
    Napi::TypedArray arr = data.As<Napi::TypedArray>();
    const size_t pixels = static_cast<size_t>(width) * height;
    MATCHD_REQUIRE(arr.ByteLength() == pixels * 3, kBadInput,
                   "image.data holds " + std::to_string(arr.ByteLength()) + " bytes but " + std::to_string(width) +
                       "x" + std::to_string(height) + "x3 needs " + std::to_string(pixels * 3));

    const size_t rowLen = static_cast<size_t>(3) * spec.temporalPatchSize * spec.patchSize * spec.patchSize;
    const size_t rows = pixels / (static_cast<size_t>(spec.patchSize) * spec.patchSize);
    const size_t needed = (static_cast<size_t>(offset) + rows) * rowLen;
    MATCHD_REQUIRE(out.ElementLength() >= needed, kBadInput,
                   "out holds " + std::to_string(out.ElementLength()) + " floats but " + std::to_string(rows) +
                       " patch rows of " + std::to_string(rowLen) + " at row " +
                       std::to_string(static_cast<size_t>(offset)) + " need " + std::to_string(needed));

    const uint8_t* rgb = static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
    float* dst = reinterpret_cast<float*>(static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset()) +
                 static_cast<size_t>(offset) * rowLen;
    auto* worker = new PatchWorker(env, rgb, width, height, spec, dst, {data, out});
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace matchd
