// Pack decoded 8-bit images into one normalised NCHW batch tensor (float32 or float16), in one pass.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

namespace matchd {

struct PackImage {
  const uint8_t* pixels;
  int channels;  // 1 (grey), 3 (RGB) or 4 (RGBA; alpha ignored: flatten before packing)
};

struct PackSpec {
  int width = 0, height = 0;
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
  float scale = 1.0f / 255.0f;  // pixel * scale, then (x - mean) / std
  bool bgr = false;             // channel order of the model's input planes
  bool fp16 = false;
};

/** IEEE half from float, round to nearest even (as numpy / ORT's Float16 do). */
uint16_t FloatToHalf(float f);

/** Write images[i] into batch slot (offset + i) of `out` (float* or uint16_t*). Pure C++: safe off-thread. */
void PackBatch(const std::vector<PackImage>& images, const PackSpec& spec, void* out, size_t offset);

/** JS: `packImages(images, out, spec) => Promise<void>`; runs on the libuv pool with all buffers pinned. */
Napi::Value PackImagesJs(const Napi::CallbackInfo& info);

/** JS: `float16ToFloat32(Uint16Array) => Float32Array` and the reverse, for embeddings and tests. */
Napi::Value HalfToFloatJs(const Napi::CallbackInfo& info);
Napi::Value FloatToHalfJs(const Napi::CallbackInfo& info);

}  // namespace matchd
