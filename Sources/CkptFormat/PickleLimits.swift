/// Resource limits applied while decoding untrusted pickles. Every limit is checked before the
/// corresponding allocation, so a hostile stream fails with `FormatError.limitExceeded` instead of
/// exhausting memory or the call stack.
public struct PickleLimits: Sendable, Equatable {
    /// Maximum nesting depth of the produced value tree (also bounds cycles created via the memo).
    public var maxDepth: Int
    /// Maximum number of nodes in the produced value tree, counting shared (memoized) subtrees once
    /// per use. Bounds "memo bombs" that reference one container many times.
    public var maxItems: Int
    /// Maximum byte length of one string or bytes value.
    public var maxStringLength: Int
    /// Maximum number of memo entries.
    public var maxMemoEntries: Int
    /// Maximum depth of the unpickler value stack plus the mark stack.
    public var maxStackDepth: Int

    /// Creates limits; defaults suit DCP metadata of very large models.
    public init(
        maxDepth: Int = 200,
        maxItems: Int = 20_000_000,
        maxStringLength: Int = 1 << 30,
        maxMemoEntries: Int = 10_000_000,
        maxStackDepth: Int = 1_000_000
    ) {
        self.maxDepth = maxDepth
        self.maxItems = maxItems
        self.maxStringLength = maxStringLength
        self.maxMemoEntries = maxMemoEntries
        self.maxStackDepth = maxStackDepth
    }

    /// Defaults.
    public static let `default` = PickleLimits()
}
