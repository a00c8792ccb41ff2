/// What a checkpoint holds under one fqn.
public enum SavedEntry: Hashable, Sendable {
    /// A tensor (`TensorStorageMetadata`).
    case tensor(SavedTensorLayout)
    /// A non-tensor value (`BytesStorageMetadata`).
    case bytes
}
