// CkptPlan: module placeholder, replaced by its implementation.
