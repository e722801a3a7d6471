/*
 * A stand-in libonnxruntime.so.1 that lets matchd's addon (linked against OrtGetApiBase@VERS_1.29.0) run on another
 * ONNX Runtime build, e.g. onnxruntime-node's 1.30.0 or 1.29.0 library: it exports that one versioned symbol and
 * forwards it to the library named by ORT_SHIM_TARGET. For benchmarks only (bench/engine-run-cost.ts,
 * bench/end-to-end-profile.ts): it tells the ONNX Runtime version and build apart from matchd's own code.
 *
 *   gcc -shared -fPIC -O2 -Wl,-soname,libonnxruntime.so.1 -Wl,--version-script=bench/ort-shim/vers.map \
 *       -o /tmp/ort-shim/libonnxruntime.so.1 bench/ort-shim/ort_shim.c -ldl
 *   LD_PRELOAD=/tmp/ort-shim/libonnxruntime.so.1 ORT_SHIM_TARGET=/path/to/libonnxruntime.so.1 node ...
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef const void* (*GetApiBase)(void);

const void* OrtGetApiBase(void) {
  static GetApiBase forward;
  if (!forward) {
    const char* target = getenv("ORT_SHIM_TARGET");
    void* lib = target ? dlopen(target, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!lib) {
      fprintf(stderr, "ort_shim: set ORT_SHIM_TARGET to a libonnxruntime.so.1 (%s)\n", target ? dlerror() : "unset");
      abort();
    }
    forward = (GetApiBase)dlsym(lib, "OrtGetApiBase");
  }
  return forward();
}
