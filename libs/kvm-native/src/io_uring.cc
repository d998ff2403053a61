// io_uring(7) for the disk backend: setup, enter, register, and the ring mappings as external
// ArrayBuffers. Constants and struct layouts come from include/uapi/linux/io_uring.h (the
// build host's kernel headers), offsets through offsetof, so JS never hard-codes a layout.
//
// The mappings belong to their ArrayBuffers: each buffer's finalizer unmaps it, so a view in
// JS can never point at unmapped memory. Closing the ring's fd (closeFd) ends the instance
// once the mappings are gone too; the caller closes it only with nothing in flight.
#include "io_uring.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "convert.h"

namespace kvmnative {

namespace {

int SysSetup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}

int SysEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags, const void* arg, size_t argSize) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, arg, argSize));
}

int SysRegister(int fd, unsigned op, const void* arg, unsigned nr) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, nr));
}

void Unmap(napi_env, void* data, void* hint) {
  munmap(data, static_cast<size_t>(reinterpret_cast<uintptr_t>(hint)));
}

// An external ArrayBuffer over `size` bytes at `addr` (an mmap of ours), unmapped by its
// finalizer. On failure the mapping is unmapped here.
Napi::ArrayBuffer OwnedMapping(Napi::Env env, void* addr, size_t size) {
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, addr, size, Unmap, reinterpret_cast<void*>(static_cast<uintptr_t>(size)), &ab);
  if (st != napi_ok) {
    munmap(addr, size);
    throw Napi::Error::New(env, "cannot create an ArrayBuffer over an io_uring mapping");
  }
  return Napi::ArrayBuffer(env, ab);
}

Napi::ArrayBuffer MapRing(Napi::Env env, int fd, off_t offset, size_t size) {
  // MAP_POPULATE: the pages exist already (the kernel allocated the rings); map them now
  // rather than fault them in on the first request.
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
  if (p == MAP_FAILED) ThrowKvmError(env, "mmap", errno);
  return OwnedMapping(env, p, size);
}

}  // namespace

// ioUringSetup(entries, cqEntries?) → { fd, features, sqEntries, cqEntries, sq, cq, sqes, sqOff, cqOff }
Napi::Value IoUringSetup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t entries = ToU32(env, info[0], "entries");
  uint32_t cqEntries = OptU32(env, info[1], 0, "cqEntries");
  io_uring_params p{};
  if (cqEntries != 0) {
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = cqEntries;
  }
  int fd = SysSetup(entries, &p);  // the fd is O_CLOEXEC
  if (fd < 0) ThrowKvmError(env, "io_uring_setup", errno);
  try {
    size_t sqSize = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    size_t cqSize = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    // With IORING_FEAT_SINGLE_MMAP both offsets map the same pages; mapping each on its own
    // keeps one owner per ArrayBuffer either way.
    Napi::ArrayBuffer sq = MapRing(env, fd, IORING_OFF_SQ_RING, sqSize);
    Napi::ArrayBuffer cq = MapRing(env, fd, IORING_OFF_CQ_RING, cqSize);
    Napi::ArrayBuffer sqes = MapRing(env, fd, IORING_OFF_SQES, p.sq_entries * sizeof(io_uring_sqe));

    Napi::Object sqOff = Napi::Object::New(env);
    sqOff.Set("head", p.sq_off.head);
    sqOff.Set("tail", p.sq_off.tail);
    sqOff.Set("ringMask", p.sq_off.ring_mask);
    sqOff.Set("ringEntries", p.sq_off.ring_entries);
    sqOff.Set("flags", p.sq_off.flags);
    sqOff.Set("dropped", p.sq_off.dropped);
    sqOff.Set("array", p.sq_off.array);
    Napi::Object cqOff = Napi::Object::New(env);
    cqOff.Set("head", p.cq_off.head);
    cqOff.Set("tail", p.cq_off.tail);
    cqOff.Set("ringMask", p.cq_off.ring_mask);
    cqOff.Set("ringEntries", p.cq_off.ring_entries);
    cqOff.Set("overflow", p.cq_off.overflow);
    cqOff.Set("cqes", p.cq_off.cqes);

    Napi::Object out = Napi::Object::New(env);
    out.Set("fd", fd);
    out.Set("features", p.features);
    out.Set("sqEntries", p.sq_entries);
    out.Set("cqEntries", p.cq_entries);
    out.Set("sq", sq);
    out.Set("cq", cq);
    out.Set("sqes", sqes);
    out.Set("sqOff", sqOff);
    out.Set("cqOff", cqOff);
    return out;
  } catch (...) {
    close(fd);
    throw;
  }
}

// ioUringEnter(fd, toSubmit, minComplete, flags) → the kernel's result, or -errno. Never
// throws: it is on the data path, and EAGAIN/EBUSY/EINTR are the caller's to retry.
Napi::Value IoUringEnter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  uint32_t toSubmit = ToU32(env, info[1], "toSubmit");
  uint32_t minComplete = ToU32(env, info[2], "minComplete");
  uint32_t flags = ToU32(env, info[3], "flags");
  int r = SysEnter(fd, toSubmit, minComplete, flags, nullptr, 0);
  return Napi::Number::New(env, r < 0 ? -errno : r);
}

// ioUringWait(fd, minComplete, timeoutMs) → 0 once minComplete completions wait in the CQ
// ring, -ETIME after timeoutMs, or another -errno (EINTR included: the caller loops). Blocks
// the calling thread: for draining at a device reset, not for the data path.
Napi::Value IoUringWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  uint32_t minComplete = ToU32(env, info[1], "minComplete");
  uint32_t timeoutMs = ToU32(env, info[2], "timeoutMs");
  __kernel_timespec ts{};
  ts.tv_sec = timeoutMs / 1000;
  ts.tv_nsec = static_cast<long long>(timeoutMs % 1000) * 1000000;
  io_uring_getevents_arg arg{};
  arg.ts = reinterpret_cast<uint64_t>(&ts);
  int r = SysEnter(fd, 0, minComplete, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
  return Napi::Number::New(env, r < 0 ? -errno : 0);
}

// ioUringRegisterEventfd(fd, eventfd): the kernel signals the eventfd for every completion.
Napi::Value IoUringRegisterEventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  int efd = static_cast<int>(ToU32(env, info[1], "eventfd"));
  if (SysRegister(fd, IORING_REGISTER_EVENTFD, &efd, 1) < 0) ThrowKvmError(env, "IORING_REGISTER_EVENTFD", errno);
  return env.Undefined();
}

// ioUringRegisterIowqMaxWorkers(fd, bounded, unbounded) → [previous bounded, previous
// unbounded]; 0 leaves a limit as it is.
Napi::Value IoUringRegisterIowqMaxWorkers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  uint32_t counts[2] = {ToU32(env, info[1], "bounded"), ToU32(env, info[2], "unbounded")};
  if (SysRegister(fd, IORING_REGISTER_IOWQ_MAX_WORKERS, counts, 2) < 0) {
    ThrowKvmError(env, "IORING_REGISTER_IOWQ_MAX_WORKERS", errno);
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, counts[0]);
  out.Set(1u, counts[1]);
  return out;
}

// mmapAnonymous(size) → { buffer, address }: private anonymous memory whose address may be
// handed to the kernel (iovec arrays for io_uring), unmapped when the buffer is collected.
Napi::Value MmapAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = ToU64(env, info[0], "size");
  if (size == 0 || size % 4096 != 0 || size > (1ull << 30)) {
    throw Napi::RangeError::New(env, "size must be a positive multiple of 4096, at most 1 GiB");
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) ThrowKvmError(env, "mmap", errno);
  Napi::ArrayBuffer buffer = OwnedMapping(env, p, size);
  Napi::Object out = Napi::Object::New(env);
  out.Set("buffer", buffer);
  out.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p))));
  return out;
}

// arrayBufferAddress(buffer) → the host address of an ArrayBuffer's memory, as a Number
// (user addresses are below 2^47). ArrayBuffer memory never moves; it stays valid for as long
// as the buffer is alive — guest RAM's chunks until munmapGuestRam. For handing guest RAM to
// io_uring by address; the caller checks every range against the buffer first.
Napi::Value ArrayBufferAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, info[0], &data, &length) != napi_ok) {
    throw Napi::Error::New(env, "cannot read the ArrayBuffer");
  }
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(data)));
}

Napi::Object MakeIoUringConstants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* name, double v) { c.Set(name, Napi::Number::New(env, v)); };
  set("IORING_OP_NOP", IORING_OP_NOP);
  set("IORING_OP_POLL_ADD", IORING_OP_POLL_ADD);
  set("IORING_OP_READV", IORING_OP_READV);
  set("IORING_OP_WRITEV", IORING_OP_WRITEV);
  set("IORING_OP_FSYNC", IORING_OP_FSYNC);
  set("IORING_OP_FALLOCATE", IORING_OP_FALLOCATE);
  set("IORING_OP_READ", IORING_OP_READ);
  set("IORING_OP_WRITE", IORING_OP_WRITE);
  set("IOSQE_IO_DRAIN", IOSQE_IO_DRAIN);
  set("IOSQE_IO_LINK", IOSQE_IO_LINK);
  set("IOSQE_ASYNC", IOSQE_ASYNC);
  set("IORING_FSYNC_DATASYNC", IORING_FSYNC_DATASYNC);
  set("IORING_ENTER_GETEVENTS", IORING_ENTER_GETEVENTS);
  set("RWF_NOWAIT", RWF_NOWAIT);
  set("POLLIN", POLLIN);
  set("POLLOUT", POLLOUT);
  set("IORING_FEAT_SINGLE_MMAP", IORING_FEAT_SINGLE_MMAP);
  set("IORING_FEAT_NODROP", IORING_FEAT_NODROP);
  set("IORING_FEAT_SUBMIT_STABLE", IORING_FEAT_SUBMIT_STABLE);
  set("IORING_FEAT_EXT_ARG", IORING_FEAT_EXT_ARG);
  // struct io_uring_sqe
  set("SQE_SIZE", sizeof(io_uring_sqe));
  set("SQE_OPCODE", offsetof(io_uring_sqe, opcode));
  set("SQE_FLAGS", offsetof(io_uring_sqe, flags));
  set("SQE_IOPRIO", offsetof(io_uring_sqe, ioprio));
  set("SQE_FD", offsetof(io_uring_sqe, fd));
  set("SQE_OFF", offsetof(io_uring_sqe, off));
  set("SQE_ADDR", offsetof(io_uring_sqe, addr));
  set("SQE_LEN", offsetof(io_uring_sqe, len));
  set("SQE_OP_FLAGS", offsetof(io_uring_sqe, rw_flags));
  set("SQE_USER_DATA", offsetof(io_uring_sqe, user_data));
  // struct io_uring_cqe
  set("CQE_SIZE", sizeof(io_uring_cqe));
  set("CQE_USER_DATA", offsetof(io_uring_cqe, user_data));
  set("CQE_RES", offsetof(io_uring_cqe, res));
  set("CQE_FLAGS", offsetof(io_uring_cqe, flags));
  // struct iovec
  set("IOVEC_SIZE", sizeof(iovec));
  set("UIO_MAXIOV", IOV_MAX);  // the kernel's UIO_MAXIOV
  return c;
}

}  // namespace kvmnative
