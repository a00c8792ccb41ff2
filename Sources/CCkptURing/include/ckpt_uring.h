// Placeholder: the I/O engine work fills this shim (liburing + libnuma behind one umbrella header).
#ifndef CKPT_URING_H
#define CKPT_URING_H
int ckpt_uring_placeholder(void);
#endif
