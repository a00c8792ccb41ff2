/// How to assemble an output file from byte ranges of data files through two bounded sets of
/// buffers: source windows (aligned ranges of one data file, each read once) and output images
/// (consecutive aligned ranges of the output, each written once). Made by ``StreamCopyPlanner``.
///
/// Whatever the order of the runs in the data files, the device sees reads and writes of (at
/// most) one window or image each, which is what a plain copy of one file into another does.
public struct StreamCopyPlan: Hashable, Sendable {
    /// An aligned range of one data file holding bytes of at least one image.
    public struct Window: Hashable, Sendable {
        /// The data file (the caller's id).
        public var file: Int
        /// Byte offset of the range in the file (a multiple of the alignment).
        public var offset: Int
        /// Length of the range (a multiple of the alignment unless it ends at the end of the file).
        public var length: Int
        /// The first and last images that copy bytes out of it: the window is read before the
        /// first and can be dropped after the last.
        public var firstImage: Int
        public var lastImage: Int
    }

    /// A piece of an image: `length` bytes copied from a window or a literal.
    public struct Piece: Hashable, Sendable {
        public enum Source: Hashable, Sendable {
            /// Index into ``StreamCopyPlan/windows``, at a byte offset in the window.
            case window(Int, offset: Int)
            /// The caller's literal, at a byte offset.
            case literal(Int, offset: Int)
        }

        public var source: Source
        /// Byte offset in the image.
        public var imageOffset: Int
        public var length: Int
    }

    /// A range of the output, written at once.
    public struct Image: Hashable, Sendable {
        /// Byte offset in the output (a multiple of the image size).
        public var offset: Int
        /// Bytes of the output it holds (the image size, less for the last one).
        public var length: Int
        /// Pieces in output order. Bytes of the image no piece covers are the caller's to fill.
        public var pieces: [Piece]
        /// Windows whose last image this is.
        public var releases: [Int]
    }

    /// Windows in the order they are first needed (the order to read them in).
    public var windows: [Window]
    /// Images in output order.
    public var images: [Image]
    /// Length of the output.
    public var outputLength: Int
    public var windowSize: Int
    public var imageSize: Int
    /// The most windows needed at once: some image still needs each of them and one of them is
    /// needed by that image. Reading windows in order with at least this many buffers never waits
    /// for a buffer that only a later image would free.
    public var peakLiveWindows: Int
    /// Bytes the windows read.
    public var readBytes: Int {
        windows.reduce(0) { $0 + $1.length }
    }
}
