/// Phase two input for one tensor: its overlap plan plus the payload location of every needed
/// saved chunk (keyed by saved chunk index; found by the caller in the records' headers).
public struct TensorReadSource: Hashable, Sendable {
    /// The phase-one plan.
    public var plan: TensorOverlapPlan
    /// Payload locations, at least for every index in ``TensorOverlapPlan/neededSavedChunks``.
    public var payloads: [Int: PayloadLocation]

    /// Creates a source.
    public init(plan: TensorOverlapPlan, payloads: [Int: PayloadLocation]) {
        self.plan = plan
        self.payloads = payloads
    }
}
