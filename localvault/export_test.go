package localvault

// DropCache empties the proxy-path cache, so benchmarks can measure the
// uncached path (tests only).
func DropCache(v *Vault) { v.cache.invalidate() }
