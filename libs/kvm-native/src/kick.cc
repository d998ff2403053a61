#include "kick.h"

#include <signal.h>
#include <string.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace kvmnative {

namespace {

struct Runner {
  pthread_t thread;
  kvm_run* run;
  const void* owner;
};

// Process-global: a kick may come from any thread (any worker's JS environment), so this
// table cannot live in per-environment instance data.
std::mutex g_mutex;
std::unordered_map<int, Runner> g_runners;

std::once_flag g_install_once;

void OnKick(int) {
  // Empty on purpose: the signal exists only to make KVM_RUN return -EINTR.
}

}  // namespace

int KickSignal() {
  return SIGRTMIN + 4;
}

void InstallKickHandler() {
  std::call_once(g_install_once, [] {
    struct sigaction old;
    if (sigaction(KickSignal(), nullptr, &old) != 0) {
      throw std::runtime_error(std::string("sigaction: ") + strerror(errno));
    }
    bool taken = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr
                                             : (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
    if (taken) {
      throw std::runtime_error("kvm-native: SIGRTMIN+4 already has a handler in this process");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnKick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
    if (sigaction(KickSignal(), &sa, nullptr) != 0) {
      throw std::runtime_error(std::string("sigaction: ") + strerror(errno));
    }
  });
}

void UnblockKickSignalInThisThread() {
  static thread_local bool unblocked = false;
  if (unblocked) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  unblocked = true;
}

void RecordRunner(int fd, kvm_run* run, const void* owner) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_runners[fd] = Runner{pthread_self(), run, owner};
}

void ForgetOwner(int fd, const void* owner) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_runners.find(fd);
  if (it != g_runners.end() && it->second.owner == owner) g_runners.erase(it);
}

void ForgetMapping(const kvm_run* run) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto it = g_runners.begin(); it != g_runners.end();) {
    it = it->second.run == run ? g_runners.erase(it) : std::next(it);
  }
}

void ForgetThisThread() {
  pthread_t self = pthread_self();
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto it = g_runners.begin(); it != g_runners.end();) {
    it = pthread_equal(it->second.thread, self) ? g_runners.erase(it) : std::next(it);
  }
}

bool Kick(int fd, int* err) {
  // Holding the lock across both steps keeps the mapping and the thread alive: forgetting a
  // runner (before munmap, before its thread's environment ends) takes the same lock.
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_runners.find(fd);
  if (it == g_runners.end()) return false;
  __atomic_store_n(&it->second.run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  *err = pthread_kill(it->second.thread, KickSignal());
  return true;
}

}  // namespace kvmnative
