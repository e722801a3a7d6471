// Engine work (model loads and runs) on threads of its own rather than libuv's pool.
//
// Why: image decoding (sharp), file reads and packing all queue on libuv's pool (4 threads by default). An engine run
// queued behind them waits while the engine sits idle, and with more decodes in flight than pool threads (any machine
// with more than 4 cores, at the default of one decode per core) it waits on every batch. Here a run starts as soon
// as it is asked for. Threads are made on demand, one per job running at once (the pipeline runs one or two), and
// live as long as the environment; results are handed back to the main thread through a thread-safe function.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace matchd {

/** One piece of engine work: `Execute` on an engine thread (plain C++ data only), `Complete` on the main thread. */
class EngineJob {
 public:
  virtual ~EngineJob() = default;
  virtual void Execute() = 0;
  virtual void Complete(Napi::Env env) = 0;
  /** Any thread, while Execute runs: the environment is going away, stop as soon as possible. */
  virtual void Cancel() {}
};

class EngineThreads {
 public:
  explicit EngineThreads(Napi::Env env);
  /**
   * The environment is going away (process exit, worker termination): running jobs are asked to stop (a run is
   * terminated through ORT), queued ones are dropped, the threads are joined. Jobs that will never complete are
   * leaked rather than freed, since they hold JS references that only the main thread may release.
   */
  ~EngineThreads();
  EngineThreads(const EngineThreads&) = delete;
  EngineThreads& operator=(const EngineThreads&) = delete;

  /** Main thread: run `job` as soon as a thread is free, making one when none is. */
  void Submit(Napi::Env env, std::unique_ptr<EngineJob> job);

  /**
   * Cancel running jobs, drop queued ones, join the threads; once. Called at the process's 'exit' event
   * (`stopEngine`, from native.ts), before exit() destroys ONNX Runtime's static objects under a run still in
   * progress (`process.exit()` skips N-API cleanup); at exit (atexit) too, for exits that bypass that event.
   */
  void Shutdown();

 private:
  static void CallJs(Napi::Env env, Napi::Function, EngineThreads* self, EngineJob* job);
  void Loop();

  using Tsfn = Napi::TypedThreadSafeFunction<EngineThreads, EngineJob, CallJs>;
  Tsfn done_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<EngineJob>> queue_;
  std::vector<EngineJob*> running_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;  // threads waiting for a job, or done with one and about to wait
  /** More runs at once than this wait for a thread (far beyond any pipeline's batchesInFlight). */
  static constexpr size_t kMaxThreads = 16;
  bool stopping_ = false;
  bool joined_ = false;  // under shutdownMutex_
  std::mutex shutdownMutex_;
  size_t inFlight_ = 0;  // main thread only: submitted and not yet completed (keeps the event loop alive)
};

}  // namespace matchd
