import Foundation

/// Human-readable byte counts and rates used by every output.
public enum ByteFormat {
    /// Binary units: `1.00 GiB`, `512 MiB`, `3.5 KiB`, `17 B`.
    public static func binary(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while abs(value) >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        return String(format: abs(value) >= 100 ? "%.0f %@" : (abs(value) >= 10 ? "%.1f %@" : "%.2f %@"), value, units[unit])
    }

    /// Decimal gigabytes per second (1 GB = 1e9 bytes): `1.23 GB/s`.
    public static func rate(_ gigabytesPerSecond: Double) -> String {
        String(format: "%.2f GB/s", gigabytesPerSecond)
    }

    /// Seconds with a sensible precision: `0.412 s`, `12.3 s`.
    public static func seconds(_ seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.3f s", seconds) }
        return String(format: "%.1f s", seconds)
    }
}
