import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Best-effort readers of `/proc`, `/sys`, `uname`, `statfs` and `statvfs`.
enum SystemProbe {
    static func readText(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func readTrimmed(_ path: String) -> String? {
        guard let text = readText(path) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    static func machine(directory: String?) -> MachineDescription {
        var cpuModel: String?
        if let cpuinfo = readText("/proc/cpuinfo") {
            for line in cpuinfo.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    cpuModel = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                break
            }
        }
        let meminfo = readText("/proc/meminfo").map(parseMeminfo) ?? [:]
        var names = utsname()
        var release: String?
        var system: String?
        var architecture: String?
        if uname(&names) == 0 {
            release = cString(&names.release)
            system = cString(&names.sysname)
            architecture = cString(&names.machine)
        }
        return MachineDescription(
            cpuModel: cpuModel,
            logicalCores: ProcessInfo.processInfo.activeProcessorCount,
            memoryTotalBytes: meminfo["MemTotal"],
            memoryAvailableBytes: meminfo["MemAvailable"],
            kernelRelease: release,
            system: system,
            architecture: architecture,
            storage: directory.map { storage(directory: $0) })
    }

    /// Parses `/proc/meminfo` lines `Key:   123 kB` into bytes.
    static func parseMeminfo(_ text: String) -> [String: Int] {
        var result: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            let fields = line[line.index(after: colon)...].split(separator: " ")
            guard let first = fields.first, let value = Int(first) else { continue }
            let unit = fields.count > 1 ? fields[1].lowercased() : ""
            result[key] = unit == "kb" ? value * 1024 : value
        }
        return result
    }

    static func memAvailable() -> Int? {
        readText("/proc/meminfo").flatMap { parseMeminfo($0)["MemAvailable"] }
    }

    static func storage(directory: String) -> StorageDescription {
        var description = StorageDescription(path: directory)
        let resolved = realPath(directory) ?? directory
        if let space = freeSpace(directory) {
            description.freeBytes = space.free
            description.totalBytes = space.total
        }
        if let mount = mountEntry(for: resolved) {
            description.mountPoint = mount.point
            description.mountSource = mount.source
            description.fileSystemType = mount.type
        }
        if let device = blockDevice(for: directory, mountSource: description.mountSource) {
            description.blockDevice = device
            description.deviceModel = readTrimmed("/sys/block/\(device)/device/model")
                ?? readTrimmed("/sys/block/\(device)/device/name")
            if let flag = readTrimmed("/sys/block/\(device)/queue/rotational") {
                description.rotational = flag == "1"
            }
        }
        return description
    }

    static func freeSpace(_ path: String) -> (free: Int, total: Int)? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let unit = Int(info.f_frsize)
        return (Int(info.f_bavail) * unit, Int(info.f_blocks) * unit)
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    struct MountEntry {
        var source: String
        var point: String
        var type: String
    }

    /// The `/proc/mounts` entry with the longest mount point containing `path` (the last one wins
    /// among equal mount points: later mounts shadow earlier ones).
    static func mountEntry(for path: String) -> MountEntry? {
        guard let text = readText("/proc/mounts") else { return nil }
        return parseMounts(text, containing: path)
    }

    static func parseMounts(_ text: String, containing path: String) -> MountEntry? {
        var best: MountEntry?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = unescapeMount(String(fields[1]))
            let contains =
                point == "/" || path == point || path.hasPrefix(point.hasSuffix("/") ? point : point + "/")
            guard contains else { continue }
            if let current = best, current.point.count > point.count { continue }
            best = MountEntry(source: unescapeMount(String(fields[0])), point: point, type: String(fields[2]))
        }
        return best
    }

    /// Decodes the `\040`-style octal escapes of `/proc/mounts`.
    static func unescapeMount(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
                let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The whole-disk name under `/sys/block` for the device holding `path`: via `st_dev` and
    /// `/sys/dev/block/MAJ:MIN`, else via the mount source `/dev/<name>`.
    static func blockDevice(for path: String, mountSource: String?) -> String? {
        var info = stat()
        if stat(path, &info) == 0 {
            let device = UInt64(info.st_dev)
            let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
            let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
            if let name = wholeDisk(sysPath: "/sys/dev/block/\(major):\(minor)") {
                return name
            }
        }
        if let source = mountSource, source.hasPrefix("/dev/") {
            let name = (realPath(source) ?? source).split(separator: "/").last.map(String.init) ?? ""
            if !name.isEmpty, let disk = wholeDisk(sysPath: "/sys/class/block/\(name)") {
                return disk
            }
        }
        return nil
    }

    private static func wholeDisk(sysPath: String) -> String? {
        guard let resolved = realPath(sysPath) else { return nil }
        let components = resolved.split(separator: "/").map(String.init)
        guard let last = components.last else { return nil }
        // A partition directory holds a `partition` file; its parent is the disk.
        if FileManager.default.fileExists(atPath: resolved + "/partition"), components.count >= 2 {
            let parent = components[components.count - 2]
            return FileManager.default.fileExists(atPath: "/sys/block/\(parent)") ? parent : nil
        }
        return FileManager.default.fileExists(atPath: "/sys/block/\(last)") ? last : nil
    }

    private static func cString<T>(_ tuple: inout T) -> String? {
        withUnsafeBytes(of: &tuple) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
        }
    }
}
