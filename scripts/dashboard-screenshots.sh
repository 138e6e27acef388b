#!/usr/bin/env bash
# scripts/dashboard-screenshots.sh — runs the dashboard's browser test
# (server/dashboard/e2e_test.go: Getting Started by clicking, then every page
# reachable by links, each screenshotted at 1280 and 390 px) keeping its
# screenshots, and copies the main ones to docs/dashboard-<page>.png for the
# README. Pages not in the dashboard yet are skipped. Needs node, chromium
# and the e2e package installed (`npm ci --prefix server/dashboard/e2e`,
# done here when node_modules is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
if [ ! -d server/dashboard/e2e/node_modules ]; then
	npm ci --prefix server/dashboard/e2e --no-audit --no-fund --loglevel=error
fi
CI=true AGENTKEYS_SCREENSHOTS="$shots" go test -count=1 -run 'TestDashboard_Browser$' ./server/dashboard/

# <screenshot in the test's directory> <name in docs/>
while read -r from to; do
	if [ -f "$shots/$from.png" ]; then
		cp "$shots/$from.png" "docs/dashboard-$to.png"
		echo "docs/dashboard-$to.png"
	fi
done <<'LIST'
credentials-desktop credentials
credentials-phone credentials-phone
credentials-new-type-cookie-desktop add-credential
agents-assigned-desktop agents
token-desktop token
audit-desktop audit
settings-team-desktop team
settings-api-keys-desktop api-keys
settings-webhooks-desktop webhooks
settings-billing-desktop billing
settings-workspace-desktop workspace
LIST
