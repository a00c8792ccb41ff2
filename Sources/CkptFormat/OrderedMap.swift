/// A small insertion-ordered dictionary (Python `dict` semantics: re-assigning a key keeps its position).
public struct OrderedMap<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    // Inlinable (with its storage usable from inlined code) so that clients get code specialized
    // for their key and value types: decoding a large `.metadata` inserts thousands of entries.
    @usableFromInline var storedKeys: [Key] = []
    @usableFromInline var storedValues: [Value] = []
    /// Keys in insertion order.
    @inlinable public var keys: [Key] { storedKeys }
    /// Values, parallel to ``keys``.
    @inlinable public var values: [Value] { storedValues }
    @usableFromInline var index: [Key: Int] = [:]

    /// Creates an empty map.
    @inlinable public init() {}

    /// Number of entries.
    @inlinable public var count: Int { keys.count }
    /// Whether the map is empty.
    @inlinable public var isEmpty: Bool { keys.isEmpty }

    /// Gets or sets the value for `key`; setting nil removes the entry.
    @inlinable public subscript(key: Key) -> Value? {
        get { index[key].map { values[$0] } }
        set {
            if let i = index[key] {
                if let newValue {
                    storedValues[i] = newValue
                } else {
                    storedKeys.remove(at: i)
                    storedValues.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
                }
            } else if let newValue {
                index.updateValue(keys.count, forKey: key)
                storedKeys.append(key)
                storedValues.append(newValue)
            }
        }
    }

    /// Reserves room for `n` entries.
    @inlinable public mutating func reserveCapacity(_ n: Int) {
        storedKeys.reserveCapacity(n)
        storedValues.reserveCapacity(n)
        index.reserveCapacity(n)
    }

    /// The stored key equal to `key` (which may carry fields excluded from equality).
    @inlinable public func storedKey(_ key: Key) -> Key? { index[key].map { keys[$0] } }

    /// Entries in order.
    public var entries: [(key: Key, value: Value)] { Array(zip(keys, values)).map { (key: $0.0, value: $0.1) } }
}

extension OrderedMap: Equatable where Value: Equatable {
    public static func == (a: OrderedMap, b: OrderedMap) -> Bool { a.keys == b.keys && a.values == b.values }
}
