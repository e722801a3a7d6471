#include "engine_threads.h"

namespace matchd {

EngineThreads::EngineThreads(Napi::Env env) {
  // No JS function: CallJs settles the job's promise itself. Unreferenced until a job is in flight, so an idle
  // addon never keeps the process alive.
  done_ = Tsfn::New(env, "matchd:engine", 0, 1, this);
  done_.Unref(env);
}

EngineThreads::~EngineThreads() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  done_.Abort();  // queued completions are finalised with env == nullptr (CallJs deletes them)
}

void EngineThreads::Submit(Napi::Env env, std::unique_ptr<EngineJob> job) {
  if (inFlight_++ == 0) done_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(mutex_);
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
    if (queue_.empty()) return;  // stopping, nothing left
    std::unique_ptr<EngineJob> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job->Execute();
    // Available again before the main thread hears that the job is done, so the next job it submits (often at
    // once) finds this thread instead of making another.
    lock.lock();
    idle_++;
    lock.unlock();
    // The main thread takes ownership in CallJs; if the function is closing, nobody will: delete here.
    EngineJob* raw = job.release();
    if (done_.NonBlockingCall(raw) != napi_ok) delete raw;
    lock.lock();
  }
}

void EngineThreads::CallJs(Napi::Env env, Napi::Function, EngineThreads* self, EngineJob* job) {
  std::unique_ptr<EngineJob> owned(job);
  if (env == nullptr) return;  // the environment is going away: drop the result
  if (--self->inFlight_ == 0) self->done_.Unref(env);
  Napi::HandleScope scope(env);
  owned->Complete(env);
}

}  // namespace matchd
