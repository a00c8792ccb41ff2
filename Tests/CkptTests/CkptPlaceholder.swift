import Testing
@testable import Ckpt

@Test func placeholder() {}
