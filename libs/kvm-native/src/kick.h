// Kicking a vCPU out of KVM_RUN from any thread.
//
// api.rst: KVM_RUN returns -EINTR when a signal is pending for the thread that runs it, and
// returns -EINTR at once when kvm_run.immediate_exit is set on entry. A kick does both:
// immediate_exit = 1 covers a thread that is between two KVM_RUN calls (the signal would
// otherwise land in JS and be lost), the signal covers a thread that is inside KVM_RUN.
//
// The signal is SIGRTMIN+4: Node catches SIGINT, SIGUSR1 (opens the inspector), SIGSEGV
// (WebAssembly trap handler) and SIGTERM, V8's profiler uses SIGPROF, glibc reserves the two
// real-time signals below SIGRTMIN, and libuv uses none. Its handler is empty and installed
// without SA_RESTART, so that the ioctl fails with EINTR instead of being restarted.
#pragma once

#include <pthread.h>

#include "uapi.h"

namespace kvmnative {

// The signal a kick sends (SIGRTMIN + 4).
int KickSignal();

// Installs the empty handler once per process. Throws std::runtime_error if another handler
// is already installed for the signal (someone else uses it: kicking would break them).
void InstallKickHandler();

// Unblocks the kick signal in the calling thread (once per thread): threads that block it
// would sit in KVM_RUN through a kick.
void UnblockKickSignalInThisThread();

// Records that the calling thread is about to run vCPU `fd`, whose kvm_run page is mapped at
// `run` by `owner` (a Vcpu object). Allocates only the first time an fd is seen.
void RecordRunner(int fd, kvm_run* run, const void* owner);
// Forgets `fd`'s runner if `owner` recorded it (Vcpu.close, Vcpu finalizer).
void ForgetOwner(int fd, const void* owner);
// Forgets every runner whose kvm_run mapping is `run` (called before that page is unmapped).
void ForgetMapping(const kvm_run* run);
// Forgets every runner recorded by the calling thread (its JS environment is going away, and
// a pthread_t of a finished thread must never be signalled).
void ForgetThisThread();

// Sets immediate_exit and signals the thread that last ran `fd`. Returns false if no thread
// is recorded for it; otherwise the errno of pthread_kill (0 on success) in *err.
bool Kick(int fd, int* err);

}  // namespace kvmnative
