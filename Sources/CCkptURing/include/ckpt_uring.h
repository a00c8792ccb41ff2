// CCkptURing: the only code in ckpt that calls liburing and libnuma.
//
// The ring is an opaque handle; Swift never sees liburing's structures, flag macros or
// io_uring_for_each_cqe. Feature macros are defined in shim.c before any libc header, so the
// public header only needs fixed-width integer types.
#ifndef CKPT_URING_H
#define CKPT_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/// rename(2) (`exchange == 0`) or renameat2(2) with RENAME_EXCHANGE (`exchange != 0`): atomically
/// swaps two existing paths. Returns 0 or -errno (EINVAL when the file system cannot exchange).
int ckpt_rename(const char *from, const char *to, int exchange);
/* fstatfs(fd).f_type, or -errno. */
long long ckpt_fs_type(int fd);
/* fallocate(fd, 0, offset, length): 0 or -errno. */
int ckpt_fallocate(int fd, long long offset, long long length);

/// Opaque io_uring instance.
typedef struct ckpt_ring ckpt_ring;

/// Creates a ring with `entries` SQ entries. Returns 0 and stores the ring in `*out`, or -errno
/// (ENOSYS, EPERM, EACCES, EINVAL... when io_uring is unavailable).
int ckpt_ring_create(unsigned entries, ckpt_ring **out);
/// Unregisters buffers (if any), calls io_uring_queue_exit and frees the handle.
void ckpt_ring_destroy(ckpt_ring *ring);

/// Read/write opcodes for ckpt_ring_prep_rw.
enum { CKPT_RING_READ = 0, CKPT_RING_WRITE = 1 };

/// Prepares a positioned read or write. `buf_index >= 0` uses the registered (fixed) buffer of
/// that index. Returns 0, or -EBUSY when the submission queue is full.
int ckpt_ring_prep_rw(ckpt_ring *ring, int opcode, int fd, void *buf, unsigned len,
                      uint64_t offset, int buf_index, uint64_t user_data);
/// Prepares a positioned vectored read or write (readv/writev) of `count` iovecs. The iovec
/// array must stay valid until the operation completes. Returns 0, or -EBUSY when the
/// submission queue is full.
int ckpt_ring_prep_rwv(ckpt_ring *ring, int opcode, int fd, const struct iovec *iovecs, unsigned count,
                       uint64_t offset, uint64_t user_data);
/// Prepares fsync (`datasync != 0`: fdatasync semantics). Returns 0 or -EBUSY.
int ckpt_ring_prep_fsync(ckpt_ring *ring, int fd, int datasync, uint64_t user_data);
/// Prepares a NOP (used to wake the reaper on shutdown). Returns 0 or -EBUSY.
int ckpt_ring_prep_nop(ckpt_ring *ring, uint64_t user_data);
/// Prepares IORING_OP_ASYNC_CANCEL for the operation carrying `target`. Returns 0 or -EBUSY.
int ckpt_ring_prep_cancel(ckpt_ring *ring, uint64_t target, uint64_t user_data);
/// Submits every prepared SQE with one io_uring_enter. Returns the count submitted or -errno.
int ckpt_ring_submit(ckpt_ring *ring);
/// Waits for at least one completion (up to `timeout_ms`, or forever when negative), then copies
/// up to `max` completions into `user_data`/`result` and marks them seen. Returns the count,
/// 0 on timeout, or -errno (e.g. -EINTR).
int ckpt_ring_reap(ckpt_ring *ring, uint64_t *user_data, int32_t *result, unsigned max,
                   int timeout_ms);
/// io_uring_register_buffers over `count` buffers. Returns 0 or -errno.
int ckpt_ring_register_buffers(ckpt_ring *ring, void *const *bases, const size_t *lengths,
                               unsigned count);

/// numa_available() (negative when libnuma cannot be used).
int ckpt_numa_available(void);
/// Number of configured NUMA nodes (1 when NUMA is unavailable).
int ckpt_numa_node_count(void);
/// Node of the CPU the calling thread runs on (0 when unknown).
int ckpt_numa_current_node(void);
/// numa_alloc_onnode: page-aligned memory on `node`, or NULL.
void *ckpt_numa_alloc_onnode(size_t size, int node);
/// numa_free.
void ckpt_numa_free(void *ptr, size_t size);

/// The O_DIRECT open flag (not importable into Swift from Glibc).
int ckpt_o_direct(void);

#ifdef __cplusplus
}
#endif
#endif
