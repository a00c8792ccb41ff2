// Feature macros first: liburing.h defines them too, and every libc header in this translation
// unit must see the same values (mismatched fd_set layouts otherwise).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 500
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/vfs.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <liburing.h>
#include <numa.h>

#include "ckpt_uring.h"

struct ckpt_ring {
    struct io_uring ring;
    int buffers_registered;
};

int ckpt_ring_create(unsigned entries, ckpt_ring **out) {
    *out = NULL;
    ckpt_ring *r = calloc(1, sizeof(*r));
    if (r == NULL) return -ENOMEM;
    int rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void ckpt_ring_destroy(ckpt_ring *r) {
    if (r == NULL) return;
    if (r->buffers_registered) io_uring_unregister_buffers(&r->ring);
    io_uring_queue_exit(&r->ring);
    free(r);
}

int ckpt_ring_prep_rw(ckpt_ring *r, int opcode, int fd, void *buf, unsigned len, uint64_t offset,
                      int buf_index, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe == NULL) return -EBUSY;
    if (opcode == CKPT_RING_READ) {
        if (buf_index >= 0) io_uring_prep_read_fixed(sqe, fd, buf, len, offset, buf_index);
        else io_uring_prep_read(sqe, fd, buf, len, offset);
    } else {
        if (buf_index >= 0) io_uring_prep_write_fixed(sqe, fd, buf, len, offset, buf_index);
        else io_uring_prep_write(sqe, fd, buf, len, offset);
    }
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int ckpt_ring_prep_rwv(ckpt_ring *r, int opcode, int fd, const struct iovec *iovecs, unsigned count,
                       uint64_t offset, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe == NULL) return -EBUSY;
    if (opcode == CKPT_RING_READ) io_uring_prep_readv(sqe, fd, iovecs, count, offset);
    else io_uring_prep_writev(sqe, fd, iovecs, count, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int ckpt_ring_prep_fsync(ckpt_ring *r, int fd, int datasync, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int ckpt_ring_prep_nop(ckpt_ring *r, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int ckpt_ring_prep_cancel(ckpt_ring *r, uint64_t target, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int ckpt_ring_submit(ckpt_ring *r) { return io_uring_submit(&r->ring); }

int ckpt_ring_reap(ckpt_ring *r, uint64_t *user_data, int32_t *result, unsigned max,
                   int timeout_ms) {
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (timeout_ms < 0) {
        rc = io_uring_wait_cqe(&r->ring, &cqe);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);
        if (rc == -ETIME) return 0;
    }
    if (rc < 0) return rc;
    unsigned head;
    unsigned count = 0;
    io_uring_for_each_cqe(&r->ring, head, cqe) {
        if (count == max) break;
        user_data[count] = cqe->user_data;
        result[count] = cqe->res;
        count++;
    }
    io_uring_cq_advance(&r->ring, count);
    return (int)count;
}

int ckpt_ring_register_buffers(ckpt_ring *r, void *const *bases, const size_t *lengths,
                               unsigned count) {
    struct iovec *iov = calloc(count, sizeof(*iov));
    if (iov == NULL) return -ENOMEM;
    for (unsigned i = 0; i < count; i++) {
        iov[i].iov_base = bases[i];
        iov[i].iov_len = lengths[i];
    }
    int rc = io_uring_register_buffers(&r->ring, iov, count);
    free(iov);
    if (rc == 0) r->buffers_registered = 1;
    return rc;
}

int ckpt_numa_available(void) { return numa_available(); }

int ckpt_numa_node_count(void) {
    if (numa_available() < 0) return 1;
    int n = numa_num_configured_nodes();
    return n < 1 ? 1 : n;
}

int ckpt_numa_current_node(void) {
    int cpu = sched_getcpu();
    if (cpu < 0 || numa_available() < 0) return 0;
    int node = numa_node_of_cpu(cpu);
    return node < 0 ? 0 : node;
}

void *ckpt_numa_alloc_onnode(size_t size, int node) { return numa_alloc_onnode(size, node); }

void ckpt_numa_free(void *ptr, size_t size) { numa_free(ptr, size); }

int ckpt_o_direct(void) { return O_DIRECT; }

int ckpt_rename(const char *from, const char *to, int exchange) {
    int rc = exchange ? renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) : rename(from, to);
    return rc == 0 ? 0 : -errno;
}

int ckpt_fallocate(int fd, long long offset, long long length) {
    int rc = fallocate(fd, 0, (off_t)offset, (off_t)length);
    return rc == 0 ? 0 : -errno;
}

long long ckpt_fs_type(int fd) {
    struct statfs fs;
    return fstatfs(fd, &fs) == 0 ? (long long)fs.f_type : -errno;
}
