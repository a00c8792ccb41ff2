int ckpt_uring_placeholder(void) { return 0; }
