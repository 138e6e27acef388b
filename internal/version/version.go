// Package version says which agentkeys this is: the version, commit and
// build date that a release build stamps in with -ldflags, or, for a build
// without them (`go install …@v1.2.3`, `go build` in a clone), what the Go
// toolchain recorded in the binary (runtime/debug.ReadBuildInfo). No field
// is ever empty.
//
// A release build sets (see goreleaser.yaml):
//
//	-X github.com/agentkeys/agentkeys/internal/version.version=1.2.3
//	-X github.com/agentkeys/agentkeys/internal/version.commit=<full sha>
//	-X github.com/agentkeys/agentkeys/internal/version.date=<RFC 3339 time>
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Set by the linker (-X); empty in a build without ldflags.
var (
	version string
	commit  string
	date    string
)

// ModulePath is the module whose version is reported, whether it is the
// main module (the agentkeys binary) or a dependency (a program using the
// client package).
const ModulePath = "github.com/agentkeys/agentkeys"

// Unknown stands for a commit or date the build did not record.
const Unknown = "unknown"

// Dev is the version of a build that recorded neither ldflags, a module
// version nor a VCS revision (for example `go build -buildvcs=false`).
const Dev = "dev"

// Info describes one build of agentkeys. Every field is non-empty.
type Info struct {
	// Version is a release version without a leading "v" ("1.2.3"), a Go
	// pseudo-version ("0.0.0-20260101120000-abcdef123456"), "dev-<commit>"
	// for a build from a clone, or Dev.
	Version string `json:"version"`
	// Commit is the VCS revision ("-dirty" appended when the tree had
	// uncommitted changes), or Unknown.
	Commit string `json:"commit"`
	// Date is the build's commit or release time (RFC 3339), or Unknown.
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

var (
	once sync.Once
	info Info
)

// Get returns this binary's Info.
func Get() Info {
	once.Do(func() {
		bi, _ := debug.ReadBuildInfo()
		info = resolve(version, commit, date, bi)
	})
	return info
}

// Version returns Get().Version.
func Version() string { return Get().Version }

// UserAgent returns "agentkeys/<version>", the User-Agent of agentkeys'
// HTTP requests.
func UserAgent() string { return "agentkeys/" + Version() }

// resolve builds an Info from the linker's values, falling back field by
// field to bi (which may be nil).
func resolve(ldVersion, ldCommit, ldDate string, bi *debug.BuildInfo) Info {
	in := Info{
		Version:   trimV(strings.TrimSpace(ldVersion)),
		Commit:    strings.TrimSpace(ldCommit),
		Date:      strings.TrimSpace(ldDate),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		var revision, vcsTime string
		modified := false
		mod := &bi.Main
		if bi.Main.Path == ModulePath {
			// VCS settings describe the main module only.
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					revision = s.Value
				case "vcs.time":
					vcsTime = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
		} else {
			mod = nil
			for _, d := range bi.Deps {
				if d.Path == ModulePath {
					mod = d
					if d.Replace != nil {
						mod = d.Replace
					}
					break
				}
			}
		}
		if in.Version == "" && mod != nil && mod.Version != "" && mod.Version != "(devel)" {
			in.Version = trimV(mod.Version)
		}
		if revision != "" {
			if modified {
				revision += "-dirty"
			}
			if in.Version == "" {
				in.Version = "dev-" + short(revision)
			}
			if in.Commit == "" {
				in.Commit = revision
			}
		}
		if in.Date == "" {
			in.Date = vcsTime
		}
	}
	if in.Version == "" {
		in.Version = Dev
	}
	if in.Commit == "" {
		in.Commit = Unknown
	}
	if in.Date == "" {
		in.Date = Unknown
	}
	return in
}

// trimV drops the "v" of "v1.2.3" so release builds (goreleaser's
// {{.Version}} has none) and `go install …@v1.2.3` builds print the same.
func trimV(v string) string {
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		return v[1:]
	}
	return v
}

// short is the first 12 characters of a revision, keeping a "-dirty" suffix.
func short(rev string) string {
	base, dirty := strings.CutSuffix(rev, "-dirty")
	if len(base) > 12 {
		base = base[:12]
	}
	if dirty {
		base += "-dirty"
	}
	return base
}

// String is the human form printed by `agentkeys version` and --version.
func (in Info) String() string {
	return "agentkeys " + in.Version + "\n" +
		"commit:   " + in.Commit + "\n" +
		"built:    " + in.Date + "\n" +
		"go:       " + in.GoVersion + "\n" +
		"platform: " + in.OS + "/" + in.Arch + "\n"
}
