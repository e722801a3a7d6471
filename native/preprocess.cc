#include "preprocess.h"

#include <cmath>
#include <cstring>
#include <string>

#include "errors.h"

namespace matchd {

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return static_cast<uint16_t>(sign | (absx > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (absx < 0x38800000u) {                                              // subnormal half or zero
    if (absx < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t mant = (absx & 0x007fffffu) | 0x00800000u;
    int shift = 126 - static_cast<int>(absx >> 23);  // 14..24
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) half++;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((absx - 0x38000000u) >> 13);
  uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) half++;
  return static_cast<uint16_t>(sign | half);
}

static float HalfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      int e = -1;
      do { e++; mant <<= 1; } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
static void PackTyped(const std::vector<PackImage>& images, const PackSpec& s, T* out, size_t offset,
                      const T (&lut)[3][256]) {
  const size_t plane = static_cast<size_t>(s.width) * s.height;
  for (size_t b = 0; b < images.size(); b++) {
    const PackImage& img = images[b];
    T* dst = out + (offset + b) * 3 * plane;
    T* p0 = dst;
    T* p1 = dst + plane;
    T* p2 = dst + 2 * plane;
    const uint8_t* src = img.pixels;
    const int ch = img.channels;
    if (ch == 1) {
      for (size_t i = 0; i < plane; i++) {
        uint8_t v = src[i];
        p0[i] = lut[0][v];
        p1[i] = lut[1][v];
        p2[i] = lut[2][v];
      }
      continue;
    }
    // Plane c takes source channel c (RGB) or 2 - c (BGR).
    const int c0 = s.bgr ? 2 : 0, c2 = s.bgr ? 0 : 2;
    for (size_t i = 0; i < plane; i++, src += ch) {
      p0[i] = lut[0][src[c0]];
      p1[i] = lut[1][src[1]];
      p2[i] = lut[2][src[c2]];
    }
  }
}

void PackBatch(const std::vector<PackImage>& images, const PackSpec& s, void* out, size_t offset) {
  // 256 values per channel: a table lookup per pixel, normalisation and fp16 rounding done once.
  if (s.fp16) {
    uint16_t lut[3][256];
    for (int c = 0; c < 3; c++)
      for (int v = 0; v < 256; v++) lut[c][v] = FloatToHalf((v * s.scale - s.mean[c]) / s.std[c]);
    PackTyped(images, s, static_cast<uint16_t*>(out), offset, lut);
  } else {
    float lut[3][256];
    for (int c = 0; c < 3; c++)
      for (int v = 0; v < 256; v++) lut[c][v] = (v * s.scale - s.mean[c]) / s.std[c];
    PackTyped(images, s, static_cast<float*>(out), offset, lut);
  }
}

namespace {

class PackWorker : public Napi::AsyncWorker {
 public:
  PackWorker(Napi::Env env, std::vector<PackImage> images, PackSpec spec, void* out, size_t offset,
             std::vector<Napi::Value> pins)
      : Napi::AsyncWorker(env, "matchd:pack"), deferred_(Napi::Promise::Deferred::New(env)),
        images_(std::move(images)), spec_(spec), out_(out), offset_(offset) {
    for (Napi::Value v : pins) pins_.push_back(Napi::Reference<Napi::Value>::New(v, 1));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { PackBatch(images_, spec_, out_, offset_); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), kInternal, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<PackImage> images_;
  PackSpec spec_;
  void* out_;
  size_t offset_;
  std::vector<Napi::Reference<Napi::Value>> pins_;
};

double Num(Napi::Object o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

void ReadTriple(Napi::Object o, const char* key, float (&dst)[3]) {
  Napi::Value v = o.Get(key);
  MATCHD_REQUIRE(v.IsArray() && v.As<Napi::Array>().Length() == 3, kBadInput,
                 std::string("expected an array of 3 numbers for ") + key);
  for (uint32_t i = 0; i < 3; i++) dst[i] = static_cast<float>(v.As<Napi::Array>().Get(i).As<Napi::Number>().DoubleValue());
}

}  // namespace

Napi::Value PackImagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 3 && info[0].IsArray() && info[1].IsTypedArray() && info[2].IsObject(),
                   kBadInput, "packImages(images, out, spec): expected an array, a TypedArray and an object");
    Napi::Array list = info[0].As<Napi::Array>();
    Napi::TypedArray out = info[1].As<Napi::TypedArray>();
    Napi::Object so = info[2].As<Napi::Object>();

    PackSpec spec;
    spec.width = static_cast<int>(Num(so, "width", 0));
    spec.height = static_cast<int>(Num(so, "height", 0));
    MATCHD_REQUIRE(spec.width > 0 && spec.height > 0, kBadInput, "spec.width and spec.height must be positive");
    ReadTriple(so, "mean", spec.mean);
    ReadTriple(so, "std", spec.std);
    for (float sd : spec.std) MATCHD_REQUIRE(sd != 0.0f, kBadInput, "spec.std must not contain 0");
    spec.scale = static_cast<float>(Num(so, "scale", 1.0 / 255.0));
    spec.bgr = so.Get("channelOrder").IsString() && so.Get("channelOrder").As<Napi::String>().Utf8Value() == "bgr";
    spec.fp16 = out.TypedArrayType() == napi_uint16_array;
    MATCHD_REQUIRE(spec.fp16 || out.TypedArrayType() == napi_float32_array, kBadInput,
                   "out must be a Float32Array (float32) or a Uint16Array (float16)");
    double offset = Num(so, "offset", 0);
    MATCHD_REQUIRE(offset >= 0, kBadInput, "spec.offset must be >= 0");

    const size_t plane = static_cast<size_t>(spec.width) * spec.height;
    const size_t needed = (static_cast<size_t>(offset) + list.Length()) * 3 * plane;
    MATCHD_REQUIRE(out.ElementLength() >= needed, kBadInput,
                   "out holds " + std::to_string(out.ElementLength()) + " elements but " + std::to_string(needed) +
                       " are needed for " + std::to_string(list.Length()) + " image(s) at offset " +
                       std::to_string(static_cast<size_t>(offset)));

    std::vector<PackImage> images;
    std::vector<Napi::Value> pins{out};
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value item = list.Get(i);
      std::string what = "image " + std::to_string(i);
      MATCHD_REQUIRE(item.IsObject(), kBadInput, what + " must be { data, width, height, channels }");
      Napi::Object o = item.As<Napi::Object>();
      Napi::Value data = o.Get("data");
      MATCHD_REQUIRE(data.IsTypedArray() && (data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array ||
                                             data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_clamped_array),
                     kBadInput, what + ": data must be a Uint8Array (a Buffer is one)");
      int w = static_cast<int>(Num(o, "width", 0)), h = static_cast<int>(Num(o, "height", 0));
      int ch = static_cast<int>(Num(o, "channels", 0));
      MATCHD_REQUIRE(w == spec.width && h == spec.height, kBadInput,
                     what + " is " + std::to_string(w) + "x" + std::to_string(h) + " but the batch is " +
                         std::to_string(spec.width) + "x" + std::to_string(spec.height) + ": resize before packing");
      MATCHD_REQUIRE(ch == 1 || ch == 3 || ch == 4, kBadInput, what + ": channels must be 1, 3 or 4");
      Napi::TypedArray arr = data.As<Napi::TypedArray>();
      MATCHD_REQUIRE(arr.ByteLength() == plane * ch, kBadInput,
                     what + ": expected " + std::to_string(plane * ch) + " bytes but received " +
                         std::to_string(arr.ByteLength()));
      images.push_back({static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset(), ch});
      pins.push_back(data);
    }
    void* dst = static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
    auto* worker = new PackWorker(env, std::move(images), spec, dst, static_cast<size_t>(offset), pins);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value HalfToFloatJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 1 && info[0].IsTypedArray() &&
                       info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array,
                   kBadInput, "float16ToFloat32 expects a Uint16Array");
    Napi::Uint16Array in = info[0].As<Napi::Uint16Array>();
    Napi::Float32Array out = Napi::Float32Array::New(env, in.ElementLength());
    for (size_t i = 0; i < in.ElementLength(); i++) out[i] = HalfToFloat(in[i]);
    return out;
  });
}

Napi::Value FloatToHalfJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 1 && info[0].IsTypedArray() &&
                       info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
                   kBadInput, "float32ToFloat16 expects a Float32Array");
    Napi::Float32Array in = info[0].As<Napi::Float32Array>();
    Napi::Uint16Array out = Napi::Uint16Array::New(env, in.ElementLength());
    for (size_t i = 0; i < in.ElementLength(); i++) out[i] = FloatToHalf(in[i]);
    return out;
  });
}

}  // namespace matchd
