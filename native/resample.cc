#include "resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "errors.h"

namespace matchd {

namespace {

// Weights are signed fixed point with 22 fractional bits: 8 bits of pixel plus 2 bits of headroom for the
// negative lobes (sums can dip below 0 or exceed 1) still fit a 32-bit accumulator.
constexpr int kFracBits = 22;
constexpr int32_t kHalf = 1 << (kFracBits - 1);
// Largest side accepted: Pillow keeps box coordinates in float, exact up to 2^24.
constexpr int kMaxSide = 1 << 24;
// Cap on one axis's weight table (outSize × ksize), far above any real image, far below memory trouble.
constexpr size_t kMaxWeights = size_t{1} << 28;

// The kernels, written as the same floating-point expressions Pillow evaluates (the order of operations decides the
// last bit of a weight, and a weight's last bit can decide a rounded pixel).
double Bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double Bicubic(double x) {
  constexpr double a = -0.5;  // Pillow's choice (Keys' Catmull-Rom); OpenCV uses -0.75
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double Lanczos3(double x) {
  if (-3.0 <= x && x < 3.0) return Sinc(x) * Sinc(x / 3);
  return 0.0;
}

struct Kernel {
  double (*fn)(double);
  double support;
};

Kernel KernelOf(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::kBilinear: return {Bilinear, 1.0};
    case ResampleFilter::kLanczos: return {Lanczos3, 3.0};
    case ResampleFilter::kBicubic: break;
  }
  return {Bicubic, 2.0};
}

inline uint8_t Clip8(int32_t acc) {
  int32_t v = acc >> kFracBits;  // arithmetic shift: floor, as Pillow's lookup index
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

/**
 * acc[i] += Σ_j p[j·stride + i] · k[j] for i < lanes: the one multiply-add loop of both passes, written so the
 * compiler vectorises it (AVX2 where the CPU has it, chosen at load time; SSE2 otherwise). Integer sums do not
 * depend on the order of the terms, so vectorising never changes a result.
 */
__attribute__((target_clones("avx2", "default")))
void AccumulateTaps(const uint8_t* __restrict p, size_t stride, const int32_t* __restrict k, int n,
                    int32_t* __restrict acc, size_t lanes) {
  for (int j = 0; j < n; j++, p += stride) {
    const int32_t kj = k[j];
    for (size_t i = 0; i < lanes; i++) acc[i] += static_cast<int32_t>(p[i]) * kj;
  }
}

// The horizontal pass copies blocks of rows into a column-major layout, so that the taps of one output pixel become
// contiguous vectors of kBlockRows·C values (the vertical pass's access pattern); 16 rows measured fastest of 8/16/32.
constexpr int kBlockRows = 16;

/** Horizontal pass over rows [y0, y0 + rows) of src into `rows` rows of dst (outW wide). */
template <int C>
void HorizontalPass(const uint8_t* src, int inW, int y0, int rows, uint8_t* dst, int outW, const AxisWeights& w) {
  const size_t inStride = static_cast<size_t>(inW) * C, outStride = static_cast<size_t>(outW) * C;
  constexpr int L = kBlockRows * C;
  std::vector<uint8_t> block(static_cast<size_t>(inW) * L);
  int y = 0;
  for (; y + kBlockRows <= rows; y += kBlockRows) {
    for (int r = 0; r < kBlockRows; r++) {
      const uint8_t* in = src + (static_cast<size_t>(y0) + y + r) * inStride;
      uint8_t* b = block.data() + r * C;
      for (int x = 0; x < inW; x++, in += C, b += L)
        for (int c = 0; c < C; c++) b[c] = in[c];
    }
    for (int x = 0; x < outW; x++) {
      int32_t acc[L];
      for (int i = 0; i < L; i++) acc[i] = kHalf;
      AccumulateTaps(block.data() + static_cast<size_t>(w.first[x]) * L, L, &w.k[static_cast<size_t>(x) * w.ksize],
                     w.count[x], acc, L);
      for (int r = 0; r < kBlockRows; r++)
        for (int c = 0; c < C; c++) dst[(static_cast<size_t>(y) + r) * outStride + static_cast<size_t>(x) * C + c] = Clip8(acc[r * C + c]);
    }
  }
  for (; y < rows; y++) {  // the last rows, fewer than a block
    const uint8_t* in = src + (static_cast<size_t>(y0) + y) * inStride;
    uint8_t* out = dst + static_cast<size_t>(y) * outStride;
    for (int x = 0; x < outW; x++) {
      int32_t acc[C];
      for (int c = 0; c < C; c++) acc[c] = kHalf;
      AccumulateTaps(in + static_cast<size_t>(w.first[x]) * C, C, &w.k[static_cast<size_t>(x) * w.ksize], w.count[x],
                     acc, C);
      for (int c = 0; c < C; c++) out[static_cast<size_t>(x) * C + c] = Clip8(acc[c]);
    }
  }
}

/** Vertical pass: each output row is a weighted sum of whole input rows. */
void VerticalPass(const uint8_t* src, size_t rowBytes, uint8_t* dst, int outH, const AxisWeights& w) {
  std::vector<int32_t> acc(rowBytes);
  for (int y = 0; y < outH; y++) {
    std::fill(acc.begin(), acc.end(), kHalf);
    AccumulateTaps(src + static_cast<size_t>(w.first[y]) * rowBytes, rowBytes, &w.k[static_cast<size_t>(y) * w.ksize],
                   w.count[y], acc.data(), rowBytes);
    uint8_t* out = dst + static_cast<size_t>(y) * rowBytes;
    for (size_t i = 0; i < rowBytes; i++) out[i] = Clip8(acc[i]);
  }
}

void Horizontal(int channels, const uint8_t* src, int inW, int y0, int rows, uint8_t* dst, int outW,
                const AxisWeights& w) {
  switch (channels) {
    case 1: return HorizontalPass<1>(src, inW, y0, rows, dst, outW, w);
    case 2: return HorizontalPass<2>(src, inW, y0, rows, dst, outW, w);
    case 3: return HorizontalPass<3>(src, inW, y0, rows, dst, outW, w);
    default: return HorizontalPass<4>(src, inW, y0, rows, dst, outW, w);
  }
}

}  // namespace

bool ResampleFilterByName(const std::string& name, ResampleFilter* out) {
  if (name == "bicubic") *out = ResampleFilter::kBicubic;
  else if (name == "bilinear") *out = ResampleFilter::kBilinear;
  else if (name == "lanczos") *out = ResampleFilter::kLanczos;
  else return false;
  return true;
}

AxisWeights ComputeAxisWeights(int inSize, int outSize, ResampleFilter filter) {
  const Kernel kernel = KernelOf(filter);
  const double scale = static_cast<double>(inSize) / outSize;
  // Downscaling widens the kernel by the scale so every input pixel contributes (antialiasing); upscaling does not.
  const double filterScale = scale < 1.0 ? 1.0 : scale;
  const double support = kernel.support * filterScale;
  const double invScale = 1.0 / filterScale;

  AxisWeights w;
  w.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  MATCHD_REQUIRE(static_cast<size_t>(outSize) * w.ksize <= kMaxWeights, kImageTooLarge,
                 "resize from " + std::to_string(inSize) + " to " + std::to_string(outSize) +
                     " needs too many filter weights");
  w.first.resize(outSize);
  w.count.resize(outSize);
  w.k.assign(static_cast<size_t>(outSize) * w.ksize, 0);
  std::vector<double> tmp(w.ksize);
  for (int i = 0; i < outSize; i++) {
    const double center = (i + 0.5) * scale;
    // Truncation after +0.5 (not floor) is what decides the window edges in Pillow; kept for identical windows.
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const int n = hi - lo;
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
      const double v = kernel.fn((static_cast<double>(j + lo) - center + 0.5) * invScale);
      tmp[j] = v;
      sum += v;
    }
    int32_t* k = &w.k[static_cast<size_t>(i) * w.ksize];
    for (int j = 0; j < n; j++) {
      const double v = sum != 0.0 ? tmp[j] / sum : tmp[j];
      const double fixed = v * (1 << kFracBits);
      k[j] = static_cast<int32_t>(v < 0 ? fixed - 0.5 : fixed + 0.5);  // round half away from zero, then truncate
    }
    w.first[i] = lo;
    w.count[i] = n;
  }
  return w;
}

void Resample8(const uint8_t* src, int inW, int inH, int channels, uint8_t* dst, int outW, int outH,
               ResampleFilter filter) {
  const bool needH = outW != inW, needV = outH != inH;
  if (!needH && !needV) {
    std::memcpy(dst, src, static_cast<size_t>(inW) * inH * channels);
    return;
  }
  AxisWeights vert = ComputeAxisWeights(inH, outH, filter);
  if (!needH) {
    VerticalPass(src, static_cast<size_t>(inW) * channels, dst, outH, vert);
    return;
  }
  AxisWeights horiz = ComputeAxisWeights(inW, outW, filter);
  // Only the rows the vertical pass reads are resampled horizontally.
  const int y0 = vert.first[0];
  const int y1 = vert.first[outH - 1] + vert.count[outH - 1];
  if (!needV) {
    Horizontal(channels, src, inW, 0, inH, dst, outW, horiz);
    return;
  }
  std::vector<uint8_t> tmp(static_cast<size_t>(outW) * (y1 - y0) * channels);
  Horizontal(channels, src, inW, y0, y1 - y0, tmp.data(), outW, horiz);
  for (int y = 0; y < outH; y++) vert.first[y] -= y0;
  VerticalPass(tmp.data(), static_cast<size_t>(outW) * channels, dst, outH, vert);
}

namespace {

struct ResizeJob {
  const uint8_t* src = nullptr;
  int inW = 0, inH = 0, channels = 0, outW = 0, outH = 0;
  ResampleFilter filter = ResampleFilter::kBicubic;
};

class ResizeWorker : public Napi::AsyncWorker {
 public:
  ResizeWorker(Napi::Env env, ResizeJob job, Napi::Value pin)
      : Napi::AsyncWorker(env, "matchd:resize"), deferred_(Napi::Promise::Deferred::New(env)), job_(job),
        pin_(Napi::Reference<Napi::Value>::New(pin, 1)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      const size_t bytes = static_cast<size_t>(job_.outW) * job_.outH * job_.channels;
      out_.reset(new uint8_t[bytes]);
      bytes_ = bytes;
      Resample8(job_.src, job_.inW, job_.inH, job_.channels, out_.get(), job_.outW, job_.outH, job_.filter);
    } catch (const CodedError& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = kImageTooLarge;
      SetError("not enough memory to resize to " + std::to_string(job_.outW) + "x" + std::to_string(job_.outH));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    uint8_t* data = out_.release();
    // Handed over without a copy; the finalizer frees it when the Buffer is collected.
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(
        Env(), data, bytes_, [](Napi::Env, uint8_t* p) { delete[] p; });
    deferred_.Resolve(buf);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  ResizeJob job_;
  Napi::Reference<Napi::Value> pin_;
  std::unique_ptr<uint8_t[]> out_;
  size_t bytes_ = 0;
  const char* code_ = kInternal;
};

int IntField(Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  MATCHD_REQUIRE(v.IsNumber(), kBadInput, what + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  MATCHD_REQUIRE(d == std::floor(d) && d >= 1 && d <= kMaxSide, kBadInput,
                 what + "." + key + " must be an integer in 1.." + std::to_string(kMaxSide) + " (got " +
                     std::to_string(d) + ")");
  return static_cast<int>(d);
}

}  // namespace

Napi::Value ResizeImageJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kBadInput, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 2 && info[0].IsObject() && info[1].IsObject(), kBadInput,
                   "resizeImage(image, spec): expected { data, width, height, channels } and { width, height, filter }");
    Napi::Object img = info[0].As<Napi::Object>();
    Napi::Object spec = info[1].As<Napi::Object>();
    ResizeJob job;
    job.inW = IntField(img, "width", "image");
    job.inH = IntField(img, "height", "image");
    job.outW = IntField(spec, "width", "spec");
    job.outH = IntField(spec, "height", "spec");
    Napi::Value ch = img.Get("channels");
    MATCHD_REQUIRE(ch.IsNumber(), kBadInput, "image.channels must be 1, 2, 3 or 4");
    job.channels = ch.As<Napi::Number>().Int32Value();
    MATCHD_REQUIRE(job.channels >= 1 && job.channels <= 4, kBadInput, "image.channels must be 1, 2, 3 or 4");
    Napi::Value f = spec.Get("filter");
    std::string name = f.IsUndefined() ? "bicubic" : f.IsString() ? f.As<Napi::String>().Utf8Value() : "";
    MATCHD_REQUIRE(ResampleFilterByName(name, &job.filter), kBadInput,
                   "spec.filter must be 'bicubic', 'bilinear' or 'lanczos'");
    Napi::Value data = img.Get("data");
    MATCHD_REQUIRE(data.IsTypedArray() && (data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array ||
                                           data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_clamped_array),
                   kBadInput, "image.data must be a Uint8Array (a Buffer is one)");
    Napi::TypedArray arr = data.As<Napi::TypedArray>();
    const size_t expected = static_cast<size_t>(job.inW) * job.inH * job.channels;
    MATCHD_REQUIRE(arr.ByteLength() == expected, kBadInput,
                   "image.data holds " + std::to_string(arr.ByteLength()) + " bytes but " + std::to_string(job.inW) +
                       "x" + std::to_string(job.inH) + "x" + std::to_string(job.channels) + " needs " +
                       std::to_string(expected));
    job.src = static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
    auto* worker = new ResizeWorker(env, job, data);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace matchd
