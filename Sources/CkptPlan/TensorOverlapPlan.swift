/// Phase one of loading a tensor: which saved chunks the rank needs and how they intersect its
/// blocks. Computed from metadata alone, before any record is opened.
public struct TensorOverlapPlan: Hashable, Sendable {
    /// The request this plan answers.
    public let request: TensorLoadRequest
    /// The saved layout it was matched against.
    public let saved: SavedTensorLayout
    /// Every non-empty intersection, sorted by saved chunk, then local chunk.
    public let overlaps: [ChunkOverlap]
    /// Indices of the saved chunks the rank needs, ascending (fetch only these records' headers).
    public let neededSavedChunks: [Int]
    /// Bytes of the requested blocks (all covered by saved chunks).
    public let neededBytes: Int
}

extension TensorOverlapPlan {
    /// The part of this plan that reads from the given saved chunks only (the others are served
    /// some other way). `neededBytes` becomes the bytes of the kept overlaps.
    public func restricted(toSavedChunks keep: Set<Int>) -> TensorOverlapPlan {
        let kept = overlaps.filter { keep.contains($0.savedChunk) }
        let bytes = kept.reduce(0) { $0 &+ $1.byteCount }
        return TensorOverlapPlan(
            request: request, saved: saved, overlaps: kept,
            neededSavedChunks: neededSavedChunks.filter { keep.contains($0) }, neededBytes: bytes)
    }
}
