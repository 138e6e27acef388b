package proxy

// NormalizeTarget exposes the IDNA step to the fuzz tests of package proxy_test.
var NormalizeTarget = normalizeTarget

// WithPlainHTTP marks a context as the proxy does for a plain-http target.
var WithPlainHTTP = withPlainHTTP
