print("ckpt: not yet implemented")
