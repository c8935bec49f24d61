#!/usr/bin/env bash
# Build actionlint (the GitHub Actions workflow linter, rhysd/actionlint) from
# its Go module with the ordinary `go` client, into a git-ignored cache, and
# print the binary's path:
#
#   <repo>/.cache/actionlint/<version>/actionlint
#
# Used by tests/workflows.test.ts (part of `npm test`) and run by .ci/run
# before `npm test`, so a cold cache does not eat into a test's time.
# Idempotent: an existing binary that reports the pinned version is reused.
# Only the Go module proxy is needed (GOPROXY as configured; no GitHub).
#
# Pinned version: v1.7.12, the newest in
#   https://proxy.golang.org/github.com/rhysd/actionlint/@v/list  (checked 2026-11-22)
# Its go.mod has no replace directives, so `go install module@version` works.
set -euo pipefail

VERSION=v1.7.12
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.cache/actionlint/$VERSION"
BIN="$DIR/actionlint"

if [ -x "$BIN" ] && [ "$("$BIN" -version 2>/dev/null | head -n1)" = "$VERSION" ]; then
  echo "$BIN"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "build-actionlint: Go is needed to build actionlint $VERSION (Debian: apt-get install -y golang-go, or https://go.dev/dl/)" >&2
  exit 1
fi

mkdir -p "$DIR"
# Build into a private temporary directory next to the target, then rename:
# a concurrent run or an interrupted build never leaves a half-written binary.
TMP="$(mktemp -d "$DIR/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "build-actionlint: building github.com/rhysd/actionlint/cmd/actionlint@$VERSION (Go module proxy)" >&2
GOBIN="$TMP" GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -trimpath -p=2" \
  go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION" >&2
got="$("$TMP/actionlint" -version | head -n1)"
if [ "$got" != "$VERSION" ]; then
  echo "build-actionlint: built binary reports $got, expected $VERSION" >&2
  exit 1
fi
mv -f "$TMP/actionlint" "$BIN"
echo "$BIN"
