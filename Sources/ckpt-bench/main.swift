print("ckpt-bench: not yet implemented")
