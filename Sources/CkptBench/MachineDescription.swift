/// The machine a benchmark ran on.
public struct MachineDescription: Sendable, Hashable, Codable {
    /// CPU model name from `/proc/cpuinfo`.
    public var cpuModel: String?
    /// Logical cores online.
    public var logicalCores: Int
    /// `MemTotal` from `/proc/meminfo`, in bytes.
    public var memoryTotalBytes: Int?
    /// `MemAvailable` from `/proc/meminfo` when probed, in bytes.
    public var memoryAvailableBytes: Int?
    /// Kernel release (`uname -r`).
    public var kernelRelease: String?
    /// Operating system name (`uname -s`).
    public var system: String?
    /// Machine architecture (`uname -m`).
    public var architecture: String?
    /// The storage behind the benchmark directory.
    public var storage: StorageDescription?

    /// Creates a description.
    public init(
        cpuModel: String?, logicalCores: Int, memoryTotalBytes: Int?, memoryAvailableBytes: Int?,
        kernelRelease: String?, system: String?, architecture: String? = nil, storage: StorageDescription?
    ) {
        self.cpuModel = cpuModel
        self.logicalCores = logicalCores
        self.memoryTotalBytes = memoryTotalBytes
        self.memoryAvailableBytes = memoryAvailableBytes
        self.kernelRelease = kernelRelease
        self.system = system
        self.architecture = architecture
        self.storage = storage
    }

    /// Probes this machine (and the storage behind `directory`, when given). Best effort: fields
    /// that cannot be read are nil.
    public static func current(directory: String? = nil) -> MachineDescription {
        SystemProbe.machine(directory: directory)
    }

    /// One line, e.g. `AMD EPYC, 2 logical cores, 23.5 GiB RAM, Linux 6.1.0 x86_64`.
    public var summary: String {
        var parts: [String] = [cpuModel ?? "unknown CPU", "\(logicalCores) logical cores"]
        if let memoryTotalBytes { parts.append("\(ByteFormat.binary(memoryTotalBytes)) RAM") }
        var kernel = system ?? "Linux"
        if let kernelRelease { kernel += " " + kernelRelease }
        if let architecture { kernel += " " + architecture }
        parts.append(kernel)
        return parts.joined(separator: ", ")
    }
}
