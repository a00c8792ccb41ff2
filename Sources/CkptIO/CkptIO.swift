// CkptIO: module placeholder, replaced by its implementation.
