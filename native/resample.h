// Pillow-compatible resampling of 8-bit interleaved images (what PIL's Image.resize does for "L" and "RGB").
//
// Bit-exact with Pillow's C core (checked against Pillow 9.4 by test/image/resample.test.ts): separable convolution,
// antialiased (the kernel is widened by the downscale factor), weights computed in double, normalised per output
// pixel, then rounded to signed 22-bit fixed point; horizontal pass first, 8-bit clipping between passes, and a pass
// is skipped when its axis keeps its size. Channels are filtered independently (Pillow premultiplies RGBA in
// Python before calling its core; callers wanting that do it themselves).
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

namespace matchd {

enum class ResampleFilter { kBilinear, kBicubic, kLanczos };

/** The filter named by PIL's constant: "bilinear", "bicubic" or "lanczos"; false when unknown. */
bool ResampleFilterByName(const std::string& name, ResampleFilter* out);

/** One axis's fixed-point weights: output i reads `count[i]` inputs from `first[i]` with weights k[i * ksize ..]. */
struct AxisWeights {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

/** The weights Pillow uses to map `inSize` samples onto `outSize` (pure C++, deterministic). */
AxisWeights ComputeAxisWeights(int inSize, int outSize, ResampleFilter filter);

/**
 * Resize `src` (inW × inH × channels, row-major, interleaved) into `dst` (outW × outH × channels).
 * channels is 1..4. When neither axis changes, `dst` receives a copy. Pure C++: safe off the main thread.
 */
void Resample8(const uint8_t* src, int inW, int inH, int channels, uint8_t* dst, int outW, int outH,
               ResampleFilter filter);

/** JS: `resizeImage(image, { width, height, filter }) => Promise<Buffer>` on the libuv pool, input pinned. */
Napi::Value ResizeImageJs(const Napi::CallbackInfo& info);

}  // namespace matchd
