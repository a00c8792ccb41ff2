/// The file system and device behind a benchmark directory. Fields are nil when not resolvable
/// (containers often hide the block device).
public struct StorageDescription: Sendable, Hashable, Codable {
    /// The directory described (as given).
    public var path: String
    /// File system type, e.g. `ext4`, `tmpfs`, `xfs` (from `/proc/mounts`; Glibc's Swift module does not export `statfs`).
    public var fileSystemType: String?
    /// Mount point that holds `path`.
    public var mountPoint: String?
    /// Mount source, e.g. `/dev/nvme0n1p2`.
    public var mountSource: String?
    /// Block device name under `/sys/block`, e.g. `nvme0n1`.
    public var blockDevice: String?
    /// Device model from `/sys/block/<dev>/device/model`.
    public var deviceModel: String?
    /// Whether the device is rotational (`/sys/block/<dev>/queue/rotational`).
    public var rotational: Bool?
    /// Bytes available to unprivileged users (`statvfs` `f_bavail * f_frsize`).
    public var freeBytes: Int?
    /// Size of the file system in bytes.
    public var totalBytes: Int?

    /// Creates a description.
    public init(
        path: String, fileSystemType: String? = nil, mountPoint: String? = nil, mountSource: String? = nil,
        blockDevice: String? = nil, deviceModel: String? = nil, rotational: Bool? = nil,
        freeBytes: Int? = nil, totalBytes: Int? = nil
    ) {
        self.path = path
        self.fileSystemType = fileSystemType
        self.mountPoint = mountPoint
        self.mountSource = mountSource
        self.blockDevice = blockDevice
        self.deviceModel = deviceModel
        self.rotational = rotational
        self.freeBytes = freeBytes
        self.totalBytes = totalBytes
    }

    /// Describes the storage behind `directory`, best effort (never throws).
    public static func probe(directory: String) -> StorageDescription {
        SystemProbe.storage(directory: directory)
    }

    /// One line for tables and summaries, e.g. `ext4 on /dev/vda (virtio disk, non-rotational), 80.1 GB free`.
    public var summary: String {
        var parts: [String] = [fileSystemType ?? "unknown fs"]
        if let mountSource { parts.append("on \(mountSource)") }
        var device: [String] = []
        if let deviceModel, !deviceModel.isEmpty { device.append(deviceModel) }
        if let rotational { device.append(rotational ? "rotational" : "non-rotational") }
        if !device.isEmpty { parts.append("(\(device.joined(separator: ", ")))") }
        var line = parts.joined(separator: " ")
        if let freeBytes { line += ", \(ByteFormat.binary(freeBytes)) free" }
        return line
    }
}
