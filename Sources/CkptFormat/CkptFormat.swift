// CkptFormat: module placeholder, replaced by its implementation.
