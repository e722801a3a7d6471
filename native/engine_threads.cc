#include "engine_threads.h"

#include <algorithm>
#include <cstdlib>

namespace matchd {

namespace {

// Every live instance (one per environment: the main thread and each worker thread), for the exit hook.
std::mutex g_mutex;
std::set<EngineThreads*>* g_all = nullptr;

void ShutdownAllAtExit() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_all)
    for (EngineThreads* e : *g_all) e->Shutdown();
}

}  // namespace

EngineThreads::EngineThreads(Napi::Env env) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_all) {
      g_all = new std::set<EngineThreads*>();  // never freed: the exit hook may run after any destructor
      std::atexit(ShutdownAllAtExit);
    }
    g_all->insert(this);
  }
  // No JS function: CallJs settles the job's promise itself. Unreferenced until a job is in flight, so an idle
  // addon never keeps the process alive.
  done_ = Tsfn::New(env, "matchd:engine", 0, 1, this);
  done_.Unref(env);
}

EngineThreads::~EngineThreads() {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_all->erase(this);
  }
  Shutdown();
  done_.Abort();  // completions still queued reach CallJs with env == nullptr
}

void EngineThreads::Shutdown() {
  std::lock_guard<std::mutex> once(shutdownMutex_);
  if (joined_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (EngineJob* job : running_) job->Cancel();
    for (auto& job : queue_) job.release();  // never started: leaked, see the header
    queue_.clear();
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  joined_ = true;
}

void EngineThreads::Submit(Napi::Env env, std::unique_ptr<EngineJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {  // shut down (process exit): nothing runs any more
      job.release();
      return;
    }
    if (inFlight_++ == 0) done_.Ref(env);
    queue_.push_back(std::move(job));
    // A waiting thread counts as idle until it has woken and taken a job, so this compares like with like.
    if (idle_ < queue_.size() && threads_.size() < kMaxThreads) threads_.emplace_back([this] { Loop(); });
  }
  wake_.notify_one();
}

void EngineThreads::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_++;
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    idle_--;
    if (stopping_) return;
    std::unique_ptr<EngineJob> job = std::move(queue_.front());
    queue_.pop_front();
    running_.push_back(job.get());
    lock.unlock();
    job->Execute();
    // Available again before the main thread hears that the job is done, so the next job it submits (often at
    // once) finds this thread instead of making another.
    lock.lock();
    running_.erase(std::find(running_.begin(), running_.end(), job.get()));
    idle_++;
    lock.unlock();
    // The main thread takes ownership in CallJs. If the function is closing, the environment is going away and the
    // job (with its JS references) is leaked: freeing it here would touch N-API off the main thread.
    EngineJob* raw = job.release();
    done_.NonBlockingCall(raw);
    lock.lock();
  }
}

void EngineThreads::CallJs(Napi::Env env, Napi::Function, EngineThreads* self, EngineJob* job) {
  if (env == nullptr) return;  // the environment is going away: the job is leaked (see the header)
  std::unique_ptr<EngineJob> owned(job);
  if (--self->inFlight_ == 0) self->done_.Unref(env);
  Napi::HandleScope scope(env);
  owned->Complete(env);
}

}  // namespace matchd
