import Testing
@testable import CkptPlan

@Test func placeholder() {}
