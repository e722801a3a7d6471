// The Qwen2-VL image processor's patch layout, in one pass: uint8 RGB (H, W multiples of patch·merge) →
// float32 rows of C·T·p·p values, exactly what transformers' Qwen2VLImageProcessor produces for one image.
#pragma once

#include <napi.h>

#include <cstdint>

namespace matchd {

struct PatchSpec {
  int patchSize = 14;
  int temporalPatchSize = 2;
  int mergeSize = 2;
  float mean[3] = {0, 0, 0};  // float32, as numpy holds them
  float std[3] = {1, 1, 1};
};

/**
 * Write the (H/p)·(W/p) patch rows of `rgb` (width × height × 3) into `out`, row after row.
 * Values: float32(pixel · (1/255 in double)), then (x − mean) / std in float32, the frame repeated
 * temporalPatchSize times. Row order: merge blocks row-major, the merge·merge patches of a block row-major inside it;
 * within a row: channel, then time, then the patch's pixels row-major. Pure C++: safe off the main thread.
 */
void PackPatches(const uint8_t* rgb, int width, int height, const PatchSpec& spec, float* out);

/** JS: `packVisionPatches(image, out, spec) => Promise<void>`; rows written from spec.offset on, buffers pinned. */
Napi::Value PackVisionPatchesJs(const Napi::CallbackInfo& info);

}  // namespace matchd
