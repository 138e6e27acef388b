#!/usr/bin/env bash
# scripts/release-test.sh — checks the release configuration and builds a
# snapshot release of one target, then installs its .deb and uses it.
#
#   1. `goreleaser check` on goreleaser.yaml.
#   2. `goreleaser release --snapshot --clean --skip=publish` on a copy of
#      goreleaser.yaml narrowed to linux/amd64 (the only change: the goos and
#      goarch lines). Every other step runs as in a release: before-hooks
#      (completions, man pages), build with the release ldflags, archive,
#      .deb and .rpm, Homebrew formula, checksums, changelog. The full
#      six-target matrix is left to release time: each extra target is
#      another full compile of agentkeys (about 1-2 min of CPU here).
#   3. Checks the archive's and the .rpm's files, then `dpkg -i` the .deb, runs
#      `agentkeys version` and `man agentkeys` from it, checks the completions'
#      places, and removes it again (`dpkg -r`), leaving the machine as it was.
#
# Needs goreleaser v2 on PATH (or $GORELEASER), dpkg, man-db, rpm (to list the
# .rpm's files), and root for dpkg. .ci/run installs them. Writes only dist/, completions/,
# manpages/ (all git-ignored) and, for the moment of the test, the package.
set -euo pipefail
cd "$(dirname "$0")/.."

GORELEASER="${GORELEASER:-goreleaser}"
fail() { echo "release test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (dpkg -i)"
command -v dpkg >/dev/null || fail "dpkg is missing"
command -v man >/dev/null || fail "man is missing: apt-get install man-db"
if dpkg -s agentkeys >/dev/null 2>&1 || [ -e /usr/bin/agentkeys ]; then
	fail "an agentkeys package or /usr/bin/agentkeys is already installed: remove it first (dpkg -r agentkeys)"
fi

tmp=$(mktemp -d)
installed=""
cleanup() {
	if [ -n "$installed" ]; then dpkg -r agentkeys >/dev/null 2>&1 || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== goreleaser check"
"$GORELEASER" check

echo "== goreleaser release --snapshot (linux/amd64)"
cfg="$tmp/goreleaser-linux-amd64.yaml"
sed -e 's/^    goos: \[linux, darwin, windows\]$/    goos: [linux]/' \
	-e 's/^    goarch: \[amd64, arm64\]$/    goarch: [amd64]/' goreleaser.yaml >"$cfg"
[ "$(diff goreleaser.yaml "$cfg" | grep -c '^>')" = 2 ] ||
	fail "could not narrow goreleaser.yaml to linux/amd64: its goos/goarch lines changed; update this script"
start=$(date +%s)
"$GORELEASER" release --snapshot --clean --skip=publish --config "$cfg"
echo "snapshot release took $(($(date +%s) - start)) s"

version=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' dist/metadata.json | head -1)
[ -n "$version" ] || fail "no version in dist/metadata.json"
archive="dist/agentkeys_${version}_linux_amd64.tar.gz"
[ -f "$archive" ] || fail "missing $archive; dist has: $(ls dist)"
tar -tzf "$archive" >"$tmp/archive.txt"
for f in agentkeys README.md LICENSE completions/agentkeys.bash completions/agentkeys.zsh completions/agentkeys.fish \
	manpages/agentkeys.1.gz manpages/agentkeys-credentials-add.1.gz; do
	grep -qx "$f" "$tmp/archive.txt" || fail "$archive lacks $f"
done
deb=$(ls dist/*.deb)
rpm=$(ls dist/*.rpm)
if command -v rpm >/dev/null; then
	rpm -qlp "$rpm" 2>/dev/null >"$tmp/rpm.txt"
	for f in /usr/bin/agentkeys /usr/share/bash-completion/completions/agentkeys /usr/share/zsh/site-functions/_agentkeys \
		/usr/share/fish/vendor_completions.d/agentkeys.fish /usr/share/man/man1/agentkeys.1.gz /usr/share/licenses/agentkeys/LICENSE; do
		grep -qx "$f" "$tmp/rpm.txt" || fail "$rpm lacks $f"
	done
else
	echo "warning: rpm is not installed: the .rpm's contents are not checked" >&2
fi
grep -q "agentkeys_${version}_linux_amd64.tar.gz" dist/checksums.txt || fail "checksums.txt lacks the archive"
(cd dist && sha256sum --check --ignore-missing --quiet checksums.txt) || fail "checksums.txt does not match the files"
grep -q 'man1.install' dist/homebrew/Formula/agentkeys.rb || fail "no Homebrew formula in dist/homebrew"

echo "== dpkg -i $deb"
installed=1
dpkg -i "$deb"
out=$(agentkeys version)
echo "$out"
[ "$(command -v agentkeys)" = /usr/bin/agentkeys ] || fail "agentkeys is not /usr/bin/agentkeys"
echo "$out" | grep -qx "agentkeys $version" || fail "agentkeys version does not say $version"
echo "$out" | grep -q "^commit: *$(git rev-parse HEAD)" || fail "agentkeys version lacks the commit"
agentkeys version --json | grep -q "\"version\": *\"$version\"" || fail "agentkeys version --json"
[ "$(agentkeys --version)" = "$out" ] || fail "agentkeys --version differs from agentkeys version"
page=$(MANPAGER=cat MANWIDTH=100 man agentkeys 2>&1) || fail "man agentkeys: $page"
echo "$page" | head -5
echo "$page" | grep -q "agentkeys - Give AI agents API access" || fail "man agentkeys shows no NAME section"
MANPAGER=cat man agentkeys-credentials-add | grep -q -- "--allow-host" || fail "man agentkeys-credentials-add"
for f in /usr/share/bash-completion/completions/agentkeys /usr/share/zsh/vendor-completions/_agentkeys \
	/usr/share/fish/vendor_completions.d/agentkeys.fish /usr/share/man/man1/agentkeys.1.gz /usr/share/doc/agentkeys/copyright; do
	[ -f "$f" ] || fail "the package did not install $f"
done

echo "== dpkg -r agentkeys"
dpkg -r agentkeys
installed=""
[ ! -e /usr/bin/agentkeys ] && [ ! -e /usr/share/man/man1/agentkeys.1.gz ] || fail "dpkg -r left files behind"
echo "release test passed: $version"
