#!/usr/bin/env bash
# scripts/release-assets.sh — writes the files that release archives and
# packages ship beside the binary, generated from the command tree so they
# never drift from it:
#   completions/agentkeys.{bash,zsh,fish}   shell completions
#   manpages/*.1.gz                          man pages (section 1)
# goreleaser.yaml runs it as a before-hook with the release's version as $1
# (the man pages' footer names it); it builds a host binary once in a
# temporary directory (with -tags manpages, the only build that has the
# hidden `man` command). Reproducible: the man pages carry the commit's date
# (SOURCE_DATE_EPOCH, set from git when unset) and gzip stores no name or time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
	export SOURCE_DATE_EPOCH
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ldflags=""
if [ -n "${1:-}" ]; then
	ldflags="-X github.com/agentkeys/agentkeys/internal/version.version=$1"
fi
CGO_ENABLED=0 go build -trimpath -tags manpages -ldflags "$ldflags" -o "$tmp/agentkeys" ./cmd/agentkeys

rm -rf completions manpages
mkdir -p completions manpages
for sh in bash zsh fish; do
	"$tmp/agentkeys" completion "$sh" >"completions/agentkeys.$sh"
done
"$tmp/agentkeys" man manpages 2>/dev/null
gzip -9n manpages/*.1
echo "release assets: $(ls completions | wc -l) completion scripts, $(ls manpages | wc -l) man pages"
