import CkptFormat
import CkptIO
import Foundation

/// Reads byte ranges of one file through the I/O engine, naming the file and offset on failure.
struct FileRangeReader {
    let engine: IOEngine
    let path: String
    let file: IOFile
    let size: Int

    init(engine: IOEngine, path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError(.invalidArgument, "'\(path)' does not exist")
        }
        guard !isDirectory.boolValue else { throw CheckpointError(.invalidArgument, "'\(path)' is a directory, expected a file") }
        self.engine = engine
        self.path = path
        do {
            file = try engine.open(path, mode: .read, direct: false)
            size = Int(try engine.size(of: file))
        } catch {
            throw CheckpointError(.io, "cannot open '\(path)': \(ToolError.oneLine(error))", underlying: error)
        }
    }

    func close() { try? engine.close(file) }

    /// Reads `length` bytes at `offset` (which must lie within the file).
    func read(_ offset: Int, _ length: Int) async throws -> [UInt8] {
        let buffer = TensorBuffer(uninitializedByteCount: length)
        try await read(offset, into: UnsafeMutableRawBufferPointer(buffer.bytes))
        return Array(buffer.bytes)
    }

    /// Fills `bytes` from `offset`.
    func read(_ offset: Int, into bytes: UnsafeMutableRawBufferPointer) async throws {
        guard offset >= 0, offset + bytes.count <= size else {
            throw CheckpointError(
                .corrupt, "'\(path)' is \(size) bytes, expected at least \(offset + bytes.count) (reading \(bytes.count) bytes at offset \(offset))")
        }
        guard bytes.count > 0 else { return }
        do {
            try await engine.read(file, at: Int64(offset), into: bytes)
        } catch {
            throw CheckpointError(.io, "'\(path)': cannot read \(bytes.count) bytes at offset \(offset): \(ToolError.oneLine(error))", underlying: error)
        }
    }

    /// The central directory of a zip archive occupying `range` of the file, reading only its tail.
    func centralDirectory(archive range: Range<Int>) async throws -> ZipArchive.CentralDirectory {
        var start = max(range.lowerBound, range.upperBound - (64 << 10))
        for _ in 0..<4 {
            let tail = try await read(start, range.upperBound - start)
            let tailOffset = start - range.lowerBound
            let parsed: Result<ZipArchive.CentralDirectory, FormatError> = tail.withUnsafeBytes { raw in
                do throws(FormatError) {
                    return .success(try ZipArchive.parseCentralDirectory(tail: raw, tailOffset: tailOffset, archiveLength: range.count))
                } catch {
                    return .failure(error)
                }
            }
            switch parsed {
            case .success(let directory): return directory
            case .failure(let error):
                if error.code == .truncated, error.offset + range.lowerBound < start {
                    start = error.offset + range.lowerBound
                    continue
                }
                throw CheckpointError(.corrupt, "'\(path)': \(error.at(file: path, baseOffset: range.lowerBound))", underlying: error)
            }
        }
        throw CheckpointError(.corrupt, "'\(path)': the zip central directory at \(range.lowerBound) cannot be located")
    }

    /// File offset of an entry's payload, from its local header (archive at `archiveStart`).
    func payloadOffset(of entry: ZipEntry, archiveStart: Int) async throws -> Int {
        let at = archiveStart + entry.localHeaderOffset
        let header = try await read(at, 30)
        let signature = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
        guard signature == 0x0403_4B50 else {
            throw CheckpointError(.corrupt, "'\(path)' at offset \(at): expected the local header of '\(entry.name)'")
        }
        let nameLength = Int(header[26]) | Int(header[27]) << 8
        let extraLength = Int(header[28]) | Int(header[29]) << 8
        return at + 30 + nameLength + extraLength
    }
}
