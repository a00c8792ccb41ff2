// Ckpt: module placeholder, replaced by its implementation.
