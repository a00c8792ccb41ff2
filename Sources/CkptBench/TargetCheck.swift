/// One project target checked against a run's measurements, e.g. "committed sharded save >= 90%
/// of raw write".
public struct TargetCheck: Sendable, Hashable, Codable {
    /// What is checked, e.g. `sharded save 4r vs raw write`.
    public var name: String
    /// The target, e.g. `>= 90%`.
    public var target: String
    /// The measured value, e.g. `93%`.
    public var measured: String
    /// Whether the target is met.
    public var met: Bool

    /// Creates a check.
    public init(name: String, target: String, measured: String, met: Bool) {
        self.name = name
        self.target = target
        self.measured = measured
        self.met = met
    }

    /// A ratio target: `value >= minimum` (or `<=` when `atMost`), shown as a percentage or a
    /// multiple.
    public static func ratio(
        _ name: String, value: Double, bound: Double, atMost: Bool = false, asPercent: Bool = true
    ) -> TargetCheck {
        func show(_ x: Double) -> String {
            asPercent ? String(format: "%.0f%%", x * 100) : String(format: "%.2fx", x)
        }
        // One more digit where rounding would hide which side of the bound the value is on.
        var measured = show(value)
        if measured == show(bound) && value != bound {
            measured = asPercent ? String(format: "%.1f%%", value * 100) : String(format: "%.3fx", value)
        }
        return TargetCheck(
            name: name, target: (atMost ? "<= " : ">= ") + show(bound), measured: measured,
            met: atMost ? value <= bound : value >= bound)
    }
}
