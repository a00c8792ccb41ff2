// Temporary ckpt-bench: runs the raw-device probe of CkptIO until the real benchmark lands.
import ArgumentParser
import CkptIO
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ckpt-bench",
        abstract: "Raw-device probe: sequential O_DIRECT write (with fsync) then cold read.")

    @Option(help: "Ranks (accepted; the probe runs one stream and only notes it).")
    var ranks: Int = 1
    @Option(help: "Directory for the probe file.")
    var dir: String = FileManager.default.temporaryDirectory.path
    @Option(help: "Bytes to write and read (e.g. 512M, 1G, 2GiB).")
    var size: String = "1G"
    @Option(help: "I/O backend: uring, posix or auto.")
    var engine: String = "auto"
    @Option(help: "Phases: write, read or both.")
    var phases: String = "both"
    @Option(help: "Use this exact file (kept); with --phases read it must exist.")
    var file: String?
    @Flag(help: "Keep the probe file.")
    var keep = false
    @Option(help: "Queue depth.")
    var queueDepth: Int = 16
    @Option(help: "Block (buffer) size, e.g. 4M.")
    var blockSize: String = "4M"
    @Flag(help: "Print JSON on stdout.")
    var json = false

    func validate() throws {
        guard RawDeviceProbe.parseSize(size) != nil else { throw ValidationError("bad --size '\(size)'") }
        guard let b = RawDeviceProbe.parseSize(blockSize), b % 4096 == 0 else {
            throw ValidationError("--block-size must be a multiple of 4096")
        }
        guard ["uring", "posix", "auto"].contains(engine) else { throw ValidationError("--engine must be uring, posix or auto") }
        guard RawDeviceProbe.Phases(rawValue: phases) != nil else { throw ValidationError("--phases must be write, read or both") }
        guard ranks >= 1, queueDepth >= 1 else { throw ValidationError("--ranks and --queue-depth must be >= 1") }
    }

    func run() async throws {
        var config = RawDeviceProbe.bestConfiguration
        config.backend = engine == "uring" ? .ioUring : engine == "posix" ? .posix : .automatic
        config.queueDepth = queueDepth
        config.bufferSize = Int(RawDeviceProbe.parseSize(blockSize) ?? (4 << 20))
        let probe = RawDeviceProbe(
            directory: dir, bytes: RawDeviceProbe.parseSize(size), file: file, keepFile: keep,
            phases: RawDeviceProbe.Phases(rawValue: phases) ?? .both, configuration: config)
        let result = try await probe.run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            if ranks > 1 { print("note: --ranks \(ranks) accepted; the raw-device probe runs a single stream") }
            print(RawDeviceProbe.table(result))
        }
    }
}

// main.swift cannot use @main; parse and run explicitly so the async run() is the one called.
do {
    let command = try BenchCommand.parse()
    try await command.run()
} catch {
    BenchCommand.exit(withError: error)
}
