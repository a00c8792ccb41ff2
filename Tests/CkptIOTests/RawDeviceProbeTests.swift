import Foundation
import Testing
@_spi(Testing) @testable import CkptIO

extension SerialIOTests {
    @Suite
    struct RawDeviceProbeTests {
        static func config(_ backend: IOEngineConfiguration.BackendChoice) -> IOEngineConfiguration {
            IOEngineConfiguration(backend: backend, queueDepth: 4, bufferSize: 1 << 20, bufferCount: 4)
        }

        @Test(arguments: [IOEngineConfiguration.BackendChoice.automatic, .posix])
        func writeThenColdReadAndCleanUp(backend: IOEngineConfiguration.BackendChoice) async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let probe = RawDeviceProbe(directory: dir, bytes: 8 << 20, configuration: Self.config(backend))
            let result = try await probe.run()
            let write = try #require(result.write)
            let read = try #require(result.read)
            #expect(write.bytes == 8 << 20 && read.bytes == 8 << 20)
            #expect(write.seconds > 0 && read.seconds > 0)
            #expect(abs(write.bytesPerSecond - Double(write.bytes) / write.seconds) < 1)
            #expect(result.settings.blockSize == 1 << 20 && result.settings.queueDepth == 4)
            #expect(result.settings.backend == (backend == .posix ? "posix" : result.settings.backend))
            #expect(!result.fileKept)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
            #expect(RawDeviceProbe.table(result).contains("GB/s"))
        }

        @Test func readsAnExistingFile() async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let path = "\(dir)/given.bin"
            let written = try await RawDeviceProbe(
                directory: dir, bytes: 3 << 20, file: path, phases: .write, configuration: Self.config(.automatic)
            ).run()
            #expect(written.fileKept && written.read == nil)
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 3 << 20)
            let read = try await RawDeviceProbe(
                directory: dir, bytes: nil, file: path, phases: .read, configuration: Self.config(.automatic)
            ).run()
            #expect(read.read?.bytes == 3 << 20)
            #expect(FileManager.default.fileExists(atPath: path))
            // Reading a file that does not exist is a typed error.
            let missing = await #expect(throws: IOError.self) {
                _ = try await RawDeviceProbe(directory: dir, bytes: nil, file: "\(dir)/nope", phases: .read).run()
            }
            #expect(missing?.code == .notFound)
        }

        @Test func copiesAnExistingFileIntoANewOneAndRemovesTheCopy() async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let path = "\(dir)/given.bin"
            _ = try await RawDeviceProbe(
                directory: dir, bytes: 5 << 20, file: path, phases: .write, configuration: Self.config(.automatic)
            ).run()
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            let result = try await RawDeviceProbe(
                directory: dir, bytes: nil, file: path, phases: .copy, configuration: Self.config(.automatic)
            ).run()
            let copy = try #require(result.copy)
            #expect(copy.bytes == 5 << 20 && copy.seconds > 0)
            #expect(result.write == nil && result.read == nil)
            #expect(RawDeviceProbe.table(result).contains("copy"))
            // The source is untouched and the copy is gone.
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["given.bin"])
            // With `.both`, `measureCopy` adds the copy after the read.
            let both = try await RawDeviceProbe(
                directory: dir, bytes: 2 << 20, configuration: Self.config(.automatic), measureCopy: true
            ).run()
            #expect(both.copy?.bytes == 2 << 20 && both.read != nil && both.write != nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["given.bin"])
        }

        @Test func parsesSizes() {
            #expect(RawDeviceProbe.parseSize("4096") == 4096)
            #expect(RawDeviceProbe.parseSize("512K") == 512 << 10)
            #expect(RawDeviceProbe.parseSize("64M") == 64 << 20)
            #expect(RawDeviceProbe.parseSize("1G") == 1 << 30)
            #expect(RawDeviceProbe.parseSize("2GiB") == 2 << 30)
            #expect(RawDeviceProbe.parseSize("1.5g") == 3 << 29)
            #expect(RawDeviceProbe.parseSize("") == nil)
            #expect(RawDeviceProbe.parseSize("-1G") == nil)
            #expect(RawDeviceProbe.parseSize("lots") == nil)
        }
    }
}
