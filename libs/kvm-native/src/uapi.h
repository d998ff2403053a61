// The one place where this addon meets the kernel's ABI.
//
// Every ioctl number, constant and struct layout used by the addon comes from the kernel's
// uapi headers, as installed by Debian's linux-libc-dev:
//   include/uapi/linux/kvm.h             -> /usr/include/linux/kvm.h
//   arch/x86/include/uapi/asm/kvm.h      -> /usr/include/x86_64-linux-gnu/asm/kvm.h
//   include/uapi/linux/if_tun.h          -> /usr/include/linux/if_tun.h   (TUN/TAP ioctls)
//   include/uapi/linux/falloc.h          -> /usr/include/linux/falloc.h   (fallocate modes)
// plus two things from glibc, whose uapi twins cannot be included next to glibc's own headers:
// struct ifreq from <net/if.h> (include/uapi/linux/if.h) and IOV_MAX from <limits.h> (the
// kernel's UIO_MAXIOV, include/uapi/linux/uio.h).
// Semantics follow Documentation/virt/kvm/api.rst.
//
// Nothing here is hard-coded: the static_asserts below only pin the sizes the kernel
// documents as ABI, so that a header or compiler surprise fails the build instead of
// corrupting an ioctl argument at run time. The list of constants exported to JS
// (`constants` in index.d.ts) is KVM_NATIVE_CONSTANTS; kvm_run field offsets are computed
// with offsetof, so JS reads the kvm_run page with the layout of the headers we built with.
#pragma once

#include <cstddef>

// linux-libc-dev 6.1's __DECLARE_FLEX_ARRAY wraps the array in a struct with an empty struct
// member. An empty struct is 0 bytes in C but 1 byte in C++, so in C++ kvm_cpuid2, kvm_msrs,
// kvm_msr_list and kvm_irq_routing grow, their entries move, and the ioctl numbers (which
// encode sizeof) change: the kernel answers EINVAL/ENOTTY. Linux 6.5 fixed the header for
// C++ ("uapi: stddef.h: Fix __DECLARE_FLEX_ARRAY for C++") by declaring a plain [0] array;
// do the same here, before <linux/kvm.h> expands the macro.
#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]

#include <linux/kvm.h>

#include <limits.h>  // IOV_MAX
#include <linux/falloc.h>
#include <linux/if_tun.h>
#include <net/if.h>  // struct ifreq, IFNAMSIZ

#if !defined(__x86_64__)
#error "kvm-native supports x86-64 hosts only (struct layouts are from arch/x86 uapi)"
#endif

static_assert(KVM_API_VERSION == 12, "KVM API version 12 is the only stable one");
static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs layout");
static_assert(sizeof(struct kvm_segment) == 24, "kvm_segment layout");
static_assert(sizeof(struct kvm_dtable) == 16, "kvm_dtable layout");
static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs layout");
static_assert(sizeof(struct kvm_fpu) == 416, "kvm_fpu layout");
static_assert(sizeof(struct kvm_msr_entry) == 16, "kvm_msr_entry layout");
static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2 layout");
static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state layout");
static_assert(sizeof(struct kvm_mp_state) == 4, "kvm_mp_state layout");
static_assert(sizeof(struct kvm_pit_config) == 64, "kvm_pit_config layout");
static_assert(sizeof(struct kvm_userspace_memory_region) == 32, "memory region layout");
static_assert(sizeof(struct kvm_ioeventfd) == 64, "kvm_ioeventfd layout");
static_assert(sizeof(struct kvm_irqfd) == 32, "kvm_irqfd layout");
static_assert(sizeof(struct kvm_irq_level) == 8, "kvm_irq_level layout");
static_assert(sizeof(struct kvm_irq_routing_entry) == 48, "kvm_irq_routing_entry layout");
static_assert(sizeof(struct kvm_msi) == 32, "kvm_msi layout");
static_assert(sizeof(struct kvm_dirty_log) == 16, "kvm_dirty_log layout");
static_assert(offsetof(struct kvm_run, immediate_exit) == 1, "kvm_run.immediate_exit");
// The flexible-array headers (see __DECLARE_FLEX_ARRAY above): sizes as the kernel sees them.
static_assert(sizeof(struct kvm_cpuid2) == 8 && offsetof(struct kvm_cpuid2, entries) == 8, "kvm_cpuid2");
static_assert(sizeof(struct kvm_msrs) == 8 && offsetof(struct kvm_msrs, entries) == 8, "kvm_msrs");
static_assert(sizeof(struct kvm_msr_list) == 4 && offsetof(struct kvm_msr_list, indices) == 4, "kvm_msr_list");
static_assert(sizeof(struct kvm_irq_routing) == 8 && offsetof(struct kvm_irq_routing, entries) == 8,
              "kvm_irq_routing");
// TUN/TAP: TUNSETIFF takes a struct ifreq (name + flags); the kernel copies 40 bytes.
static_assert(sizeof(struct ifreq) == 40 && IFNAMSIZ == 16, "struct ifreq layout");
// readv/writev: glibc's IOV_MAX is the kernel's UIO_MAXIOV (more iovecs are EINVAL).
static_assert(IOV_MAX == 1024, "IOV_MAX is UIO_MAXIOV");

// X(name, value): every constant exported to JS as `constants.name`.
#define KVM_NATIVE_CONSTANTS(X)                                                     \
  X(KVM_API_VERSION, KVM_API_VERSION)                                               \
  /* kvm_run.exit_reason */                                                         \
  X(KVM_EXIT_UNKNOWN, KVM_EXIT_UNKNOWN)                                             \
  X(KVM_EXIT_EXCEPTION, KVM_EXIT_EXCEPTION)                                         \
  X(KVM_EXIT_IO, KVM_EXIT_IO)                                                       \
  X(KVM_EXIT_HYPERCALL, KVM_EXIT_HYPERCALL)                                         \
  X(KVM_EXIT_DEBUG, KVM_EXIT_DEBUG)                                                 \
  X(KVM_EXIT_HLT, KVM_EXIT_HLT)                                                     \
  X(KVM_EXIT_MMIO, KVM_EXIT_MMIO)                                                   \
  X(KVM_EXIT_IRQ_WINDOW_OPEN, KVM_EXIT_IRQ_WINDOW_OPEN)                             \
  X(KVM_EXIT_SHUTDOWN, KVM_EXIT_SHUTDOWN)                                           \
  X(KVM_EXIT_FAIL_ENTRY, KVM_EXIT_FAIL_ENTRY)                                       \
  X(KVM_EXIT_INTR, KVM_EXIT_INTR)                                                   \
  X(KVM_EXIT_SET_TPR, KVM_EXIT_SET_TPR)                                             \
  X(KVM_EXIT_TPR_ACCESS, KVM_EXIT_TPR_ACCESS)                                       \
  X(KVM_EXIT_NMI, KVM_EXIT_NMI)                                                     \
  X(KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTERNAL_ERROR)                               \
  X(KVM_EXIT_SYSTEM_EVENT, KVM_EXIT_SYSTEM_EVENT)                                   \
  X(KVM_EXIT_IO_IN, KVM_EXIT_IO_IN)                                                 \
  X(KVM_EXIT_IO_OUT, KVM_EXIT_IO_OUT)                                               \
  X(KVM_SYSTEM_EVENT_SHUTDOWN, KVM_SYSTEM_EVENT_SHUTDOWN)                           \
  X(KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_RESET)                                 \
  X(KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_CRASH)                                 \
  /* KVM_CHECK_EXTENSION */                                                         \
  X(KVM_CAP_IRQCHIP, KVM_CAP_IRQCHIP)                                               \
  X(KVM_CAP_USER_MEMORY, KVM_CAP_USER_MEMORY)                                       \
  X(KVM_CAP_SET_TSS_ADDR, KVM_CAP_SET_TSS_ADDR)                                     \
  X(KVM_CAP_EXT_CPUID, KVM_CAP_EXT_CPUID)                                           \
  X(KVM_CAP_NR_VCPUS, KVM_CAP_NR_VCPUS)                                             \
  X(KVM_CAP_MAX_VCPUS, KVM_CAP_MAX_VCPUS)                                           \
  X(KVM_CAP_PIT2, KVM_CAP_PIT2)                                                     \
  X(KVM_CAP_IOEVENTFD, KVM_CAP_IOEVENTFD)                                           \
  X(KVM_CAP_IRQFD, KVM_CAP_IRQFD)                                                   \
  X(KVM_CAP_IRQ_ROUTING, KVM_CAP_IRQ_ROUTING)                                       \
  X(KVM_CAP_SIGNAL_MSI, KVM_CAP_SIGNAL_MSI)                                         \
  X(KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_IMMEDIATE_EXIT)                                 \
  X(KVM_CAP_NR_MEMSLOTS, KVM_CAP_NR_MEMSLOTS)                                       \
  X(KVM_CAP_READONLY_MEM, KVM_CAP_READONLY_MEM)                                     \
  X(KVM_CAP_SPLIT_IRQCHIP, KVM_CAP_SPLIT_IRQCHIP)                                   \
  X(KVM_CAP_X2APIC_API, KVM_CAP_X2APIC_API)                                         \
  X(KVM_CAP_TSC_DEADLINE_TIMER, KVM_CAP_TSC_DEADLINE_TIMER)                         \
  /* kvm_mp_state.mp_state */                                                       \
  X(KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_RUNNABLE)                                   \
  X(KVM_MP_STATE_UNINITIALIZED, KVM_MP_STATE_UNINITIALIZED)                         \
  X(KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_INIT_RECEIVED)                         \
  X(KVM_MP_STATE_HALTED, KVM_MP_STATE_HALTED)                                       \
  X(KVM_MP_STATE_SIPI_RECEIVED, KVM_MP_STATE_SIPI_RECEIVED)                         \
  /* kvm_userspace_memory_region.flags */                                           \
  X(KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_LOG_DIRTY_PAGES)                               \
  X(KVM_MEM_READONLY, KVM_MEM_READONLY)                                             \
  /* kvm_irq_routing_irqchip.irqchip */                                             \
  X(KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_MASTER)                                 \
  X(KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_PIC_SLAVE)                                   \
  X(KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_IOAPIC)                                         \
  /* kvm_pit_config.flags */                                                        \
  X(KVM_PIT_SPEAKER_DUMMY, KVM_PIT_SPEAKER_DUMMY)                                   \
  /* TUNSETIFF flags: tapOpen sets them, tapGetFeatures() answers with them */      \
  X(IFF_TAP, IFF_TAP)                                                               \
  X(IFF_NO_PI, IFF_NO_PI)                                                           \
  X(IFF_VNET_HDR, IFF_VNET_HDR)                                                     \
  X(IFF_MULTI_QUEUE, IFF_MULTI_QUEUE)                                               \
  /* TUNSETOFFLOAD flags (tapSetOffload) */                                         \
  X(TUN_F_CSUM, TUN_F_CSUM)                                                         \
  X(TUN_F_TSO4, TUN_F_TSO4)                                                         \
  X(TUN_F_TSO6, TUN_F_TSO6)                                                         \
  X(TUN_F_TSO_ECN, TUN_F_TSO_ECN)                                                   \
  X(TUN_F_UFO, TUN_F_UFO)                                                           \
  /* fallocate(2) modes */                                                          \
  X(FALLOC_FL_KEEP_SIZE, FALLOC_FL_KEEP_SIZE)                                       \
  X(FALLOC_FL_PUNCH_HOLE, FALLOC_FL_PUNCH_HOLE)                                     \
  X(FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE)                                     \
  /* the most buffers readv/writev/preadv/pwritev take */                           \
  X(IOV_MAX, IOV_MAX)                                                               \
  /* struct kvm_run field offsets (bytes into Vcpu.runBuffer) */                    \
  X(RUN_IMMEDIATE_EXIT, offsetof(struct kvm_run, immediate_exit))                   \
  X(RUN_EXIT_REASON, offsetof(struct kvm_run, exit_reason))                         \
  X(RUN_IO_DIRECTION, offsetof(struct kvm_run, io.direction))                       \
  X(RUN_IO_SIZE, offsetof(struct kvm_run, io.size))                                 \
  X(RUN_IO_PORT, offsetof(struct kvm_run, io.port))                                 \
  X(RUN_IO_COUNT, offsetof(struct kvm_run, io.count))                               \
  X(RUN_IO_DATA_OFFSET, offsetof(struct kvm_run, io.data_offset))                   \
  X(RUN_MMIO_PHYS_ADDR, offsetof(struct kvm_run, mmio.phys_addr))                   \
  X(RUN_MMIO_DATA, offsetof(struct kvm_run, mmio.data))                             \
  X(RUN_MMIO_LEN, offsetof(struct kvm_run, mmio.len))                               \
  X(RUN_MMIO_IS_WRITE, offsetof(struct kvm_run, mmio.is_write))                     \
  X(RUN_SYSTEM_EVENT_TYPE, offsetof(struct kvm_run, system_event.type))             \
  X(RUN_INTERNAL_SUBERROR, offsetof(struct kvm_run, internal.suberror))             \
  X(RUN_FAIL_ENTRY_REASON, offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason))
