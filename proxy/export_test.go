package proxy

// NormalizeTarget exposes the IDNA step to the fuzz tests of package proxy_test.
var NormalizeTarget = normalizeTarget
