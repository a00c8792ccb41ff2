/// A small insertion-ordered dictionary (Python `dict` semantics: re-assigning a key keeps its position).
public struct OrderedMap<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// Keys in insertion order.
    public private(set) var keys: [Key] = []
    /// Values, parallel to ``keys``.
    public private(set) var values: [Value] = []
    private var index: [Key: Int] = [:]

    /// Creates an empty map.
    public init() {}

    /// Number of entries.
    public var count: Int { keys.count }
    /// Whether the map is empty.
    public var isEmpty: Bool { keys.isEmpty }

    /// Gets or sets the value for `key`; setting nil removes the entry.
    public subscript(key: Key) -> Value? {
        get { index[key].map { values[$0] } }
        set {
            if let i = index[key] {
                if let newValue {
                    values[i] = newValue
                } else {
                    keys.remove(at: i)
                    values.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
                }
            } else if let newValue {
                index[key] = keys.count
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// Reserves room for `n` entries.
    mutating func reserveCapacity(_ n: Int) {
        keys.reserveCapacity(n)
        values.reserveCapacity(n)
        index.reserveCapacity(n)
    }

    /// The stored key equal to `key` (which may carry fields excluded from equality).
    public func storedKey(_ key: Key) -> Key? { index[key].map { keys[$0] } }

    /// Entries in order.
    public var entries: [(key: Key, value: Value)] { Array(zip(keys, values)).map { (key: $0.0, value: $0.1) } }
}

extension OrderedMap: Equatable where Value: Equatable {
    public static func == (a: OrderedMap, b: OrderedMap) -> Bool { a.keys == b.keys && a.values == b.values }
}
