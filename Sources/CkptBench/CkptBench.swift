// CkptBench: module placeholder, replaced by its implementation.
