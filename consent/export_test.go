package consent

// RunRegistry runs r until the test ends and waits for its first load,
// for the integration tests of package consent_test.
var RunRegistry = runRegistry
