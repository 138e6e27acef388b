package version_test

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/internal/version"
)

func TestResolve(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	main := func(v string, settings []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: version.ModulePath, Version: v}, Settings: settings}
	}
	tests := []struct {
		name                string
		ldV, ldC, ldD       string
		bi                  *debug.BuildInfo
		wantV, wantC, wantD string
	}{
		{"Ldflags", "1.2.3", rev, "2026-01-02T03:04:05Z", main("(devel)", vcs("vcs.revision", "ffff")), "1.2.3", rev, "2026-01-02T03:04:05Z"},
		{"LdflagsWithV", "v1.2.3", "", "", nil, "1.2.3", version.Unknown, version.Unknown},
		{"GoInstallAtVersion", "", "", "", main("v1.4.0", nil), "1.4.0", version.Unknown, version.Unknown},
		{"GoInstallPseudo", "", "", "", main("v0.0.0-20260101120000-0123456789ab", vcs("vcs.revision", rev, "vcs.time", "2026-01-01T12:00:00Z")),
			"0.0.0-20260101120000-0123456789ab", rev, "2026-01-01T12:00:00Z"},
		{"CloneWithVCS", "", "", "", main("(devel)", vcs("vcs.revision", rev, "vcs.time", "2026-01-01T12:00:00Z", "vcs.modified", "false")),
			"dev-0123456789ab", rev, "2026-01-01T12:00:00Z"},
		{"CloneDirty", "", "", "", main("(devel)", vcs("vcs.revision", rev, "vcs.modified", "true")),
			"dev-0123456789ab-dirty", rev + "-dirty", version.Unknown},
		{"NoVCS", "", "", "", main("(devel)", nil), version.Dev, version.Unknown, version.Unknown},
		{"EmptyMainVersion", "", "", "", main("", nil), version.Dev, version.Unknown, version.Unknown},
		{"NoBuildInfo", "", "", "", nil, version.Dev, version.Unknown, version.Unknown},
		{"BlankLdflags", " ", " ", " ", nil, version.Dev, version.Unknown, version.Unknown},
		{"AsDependency", "", "", "", &debug.BuildInfo{
			Main:     debug.Module{Path: "example.com/mytool", Version: "v9.9.9"},
			Settings: vcs("vcs.revision", "ffffffffffff"), // the other module's revision: not ours
			Deps:     []*debug.Module{{Path: "golang.org/x/net", Version: "v0.1.0"}, {Path: version.ModulePath, Version: "v1.5.0"}},
		}, "1.5.0", version.Unknown, version.Unknown},
		{"AsReplacedDependency", "", "", "", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/mytool"},
			Deps: []*debug.Module{{Path: version.ModulePath, Version: "v1.5.0", Replace: &debug.Module{Path: "../agentkeys", Version: ""}}},
		}, version.Dev, version.Unknown, version.Unknown},
		{"NotADependency", "", "", "", &debug.BuildInfo{Main: debug.Module{Path: "example.com/mytool", Version: "v9.9.9"}}, version.Dev, version.Unknown, version.Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := version.Resolve(tc.ldV, tc.ldC, tc.ldD, tc.bi)
			if in.Version != tc.wantV || in.Commit != tc.wantC || in.Date != tc.wantD {
				t.Errorf("got version %q commit %q date %q; want %q %q %q", in.Version, in.Commit, in.Date, tc.wantV, tc.wantC, tc.wantD)
			}
			if in.OS != runtime.GOOS || in.Arch != runtime.GOARCH || in.GoVersion == "" {
				t.Errorf("platform %s/%s go %q", in.OS, in.Arch, in.GoVersion)
			}
		})
	}
}

func TestGet_NeverEmpty(t *testing.T) {
	in := version.Get()
	for name, v := range map[string]string{"version": in.Version, "commit": in.Commit, "date": in.Date, "go": in.GoVersion, "os": in.OS, "arch": in.Arch} {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
	}
	if ua := version.UserAgent(); ua != "agentkeys/"+in.Version {
		t.Errorf("UserAgent() = %q", ua)
	}
	s := in.String()
	if !strings.HasPrefix(s, "agentkeys "+in.Version+"\n") || !strings.Contains(s, "platform: "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("String() = %q", s)
	}
}
