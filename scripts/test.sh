#!/usr/bin/env bash
# scripts/test.sh — runs the whole agentkeys test suite: go vet, every Go test
# with the race detector (conformance, CLI, proxy, MCP end to end with the
# official TypeScript SDK, TUI in tmux, keychain against a real Secret
# Service), then each fuzz target briefly.
#
# Optional tools (a Secret Service, node, tmux) are used when present; tests
# that need a missing one skip with a message — except under CI=true, where
# they fail. `.ci/run` installs everything first.
set -euo pipefail
cd "$(dirname "$0")/.."

export AGENTKEYS_TEST_DATABASE_URL="${AGENTKEYS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
# A count, not a duration: with a duration Go 1.26's fuzz coordinator can
# fail a target with "context deadline exceeded" when the deadline meets a
# worker starved of CPU (golang/go#75804, fixed in Go 1.27); a count has no
# deadline. 50,000 inputs take 1-10 s per target here.
FUZZTIME="${FUZZTIME:-50000x}"

# Re-run inside a private D-Bus session with an unlocked gnome-keyring, so
# the keychain test talks to a real Secret Service and never to the user's.
if [ "${1:-}" != "--in-session" ] && command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
	exec dbus-run-session -- "$(pwd)/scripts/test.sh" --in-session
fi
if [ "${1:-}" = "--in-session" ]; then
	# The throwaway keyring lives in a temporary directory, never in the real $HOME.
	keyring_home=$(mktemp -d)
	trap 'rm -rf "$keyring_home"' EXIT
	eval "$(printf 'agentkeys-test\n' | HOME="$keyring_home" XDG_DATA_HOME="$keyring_home/data" \
		XDG_CACHE_HOME="$keyring_home/cache" XDG_CONFIG_HOME="$keyring_home/config" \
		gnome-keyring-daemon --unlock --components=secrets)"
	export GNOME_KEYRING_CONTROL
	# Wait until the daemon owns its bus name: a client call before that starts
	# a second, locked daemon (see NOTES.md).
	for _ in $(seq 1 100); do
		if dbus-send --session --dest=org.freedesktop.DBus --type=method_call --print-reply \
			/org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
			export AGENTKEYS_TEST_KEYCHAIN=1
			break
		fi
		sleep 0.1
	done
	if [ "${AGENTKEYS_TEST_KEYCHAIN:-}" != 1 ]; then
		if [ "${CI:-}" = true ]; then
			echo "error: gnome-keyring did not come up, so the keychain test cannot run" >&2
			exit 1
		fi
		echo "warning: gnome-keyring did not come up; the keychain test will skip" >&2
	fi
fi

if [ -f mcp/e2e/package-lock.json ] && [ ! -d mcp/e2e/node_modules ] && command -v npm >/dev/null; then
	npm ci --prefix mcp/e2e --no-audit --no-fund --loglevel=error
fi
if [ -f cmd/testdata/sdk-e2e/package-lock.json ] && [ ! -d cmd/testdata/sdk-e2e/node_modules ] && command -v npm >/dev/null; then
	npm ci --prefix cmd/testdata/sdk-e2e --no-audit --no-fund --loglevel=error
fi

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -timeout 30m ./...

# The SDKs (sdk/typescript with node --test, sdk/python with unittest), against
# `agentkeys up` and `agentkeys serve` from one binary built here.
echo "== SDKs"
(
	sdk_bin=$(mktemp -d)
	trap 'rm -rf "$sdk_bin"' EXIT
	go build -o "$sdk_bin/agentkeys" ./cmd/agentkeys
	export AGENTKEYS_BIN="$sdk_bin/agentkeys"
	if command -v node >/dev/null && command -v npm >/dev/null; then
		[ -d sdk/typescript/node_modules ] || npm ci --prefix sdk/typescript --no-audit --no-fund --loglevel=error
		npm run --prefix sdk/typescript --silent build
		(cd sdk/typescript && node --test test/)
	elif [ "${CI:-}" = true ]; then
		echo "error: node/npm missing, so the TypeScript SDK's tests cannot run" >&2
		exit 1
	else
		echo "skip: the TypeScript SDK's tests need node and npm" >&2
	fi
	if command -v python3 >/dev/null; then
		(cd sdk/python && PYTHONPATH=src python3 -m unittest discover -s tests)
	elif [ "${CI:-}" = true ]; then
		echo "error: python3 missing, so the Python SDK's tests cannot run" >&2
		exit 1
	else
		echo "skip: the Python SDK's tests need python3" >&2
	fi
)

echo "== fuzz (each target ${FUZZTIME})"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
echo "all tests passed"
