#!/usr/bin/env bash
# Build the real engine binaries (Pulumi CLI, language host, resource plugins,
# kubeadm, kube-apiserver, etcd) from their published Go modules, pinned by
# module path + version, with the ordinary `go` client, into a git-ignored cache:
#
#   <repo>/.cache/engine/bin/<tool>
#
# Idempotent: a tool whose binary exists with a stamp matching its recipe
# (module, version, package, ldflags, wrapper-file hash, go version) is skipped.
# A tool that fails does not stop the others; failures are listed at the end.
#
# Usage: tests/engine/build-tools.sh [--require-all] [--force] [--only a,b] [--list]
#   --require-all  exit non-zero if any selected tool failed (default: exit 0)
#   --force        rebuild even if the stamp matches
#   --only a,b     build only these tools (names as in --list)
#   --list         print the tool table and exit
# Environment:
#   ENGINE_CACHE   cache dir (default <repo>/.cache/engine)
#   ENGINE_GOFLAGS extra GOFLAGS (default "-p=2"; the machine has 2 cores)
# Only the Go module proxy is used. A tool whose module (or one of its
# dependencies) the proxy does not serve is reported as failed with the
# proxy's answer; it is never replaced by something else.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${ENGINE_CACHE:-$ROOT/.cache/engine}"
BIN="$CACHE/bin"
STAMPS="$CACHE/stamps"
LOGS="$CACHE/logs"
WORK="$CACHE/work"
WRAPPERS="$HERE/wrappers"

REQUIRE_ALL=0
FORCE=0
ONLY=""
LIST=0
while [ $# -gt 0 ]; do
  case "$1" in
    --require-all) REQUIRE_ALL=1 ;;
    --force) FORCE=1 ;;
    --only) shift; ONLY="${1:-}" ;;
    --only=*) ONLY="${1#--only=}" ;;
    --list) LIST=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

K8S_VERSION=v1.36.4
PULUMI_VERSION=v3.248.0
ETCD_VERSION=v3.6.8

# Kubernetes version ldflags (what hack/lib/version.sh sets); kubeadm refuses
# to work with the placeholder v0.0.0-master version.
k8s_ldflags() {
  local v="$1" major minor f=""
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

# Tool table, one per line:
#   name | wrapper dir (under wrappers/) | main package | module@version | extra ldflags | GONOSUMDB
# GONOSUMDB lists modules the checksum database does not know (the proxy serves
# them, but the checksum database answers 404); the wrapper's committed go.sum pins
# their hashes instead.
TOOLS="$(cat <<EOF
kubeadm|kubernetes|k8s.io/kubernetes/cmd/kubeadm|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
pulumi|pulumi|github.com/pulumi/pulumi/pkg/v3/cmd/pulumi|github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION|-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION|github.com/pulumi/pulumi/pkg
pulumi-language-nodejs|pulumi-language-nodejs|github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3|github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$PULUMI_VERSION|-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION|github.com/pulumi/pulumi/pkg
pulumi-resource-command|pulumi-resource-command|github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command|github.com/pulumi/pulumi-command/provider@v1.2.1|-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=v1.2.1|
pulumi-resource-tls|pulumi-resource-tls|github.com/pulumi/pulumi-tls/provider/v5/cmd/pulumi-resource-tls|github.com/pulumi/pulumi-tls/provider/v5@v5.6.1|-X github.com/pulumi/pulumi-tls/provider/v5/pkg/version.Version=v5.6.1|
pulumi-resource-random|pulumi-resource-random|github.com/pulumi/pulumi-random/provider/v4/cmd/pulumi-resource-random|github.com/pulumi/pulumi-random/provider/v4@v4.21.2|-X github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version=v4.21.2|
kubectl|kubernetes|k8s.io/kubernetes/cmd/kubectl|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
kube-controller-manager|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
kube-apiserver|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
kubelet|kubernetes|k8s.io/kubernetes/cmd/kubelet|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
kube-scheduler|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
kube-proxy|kubernetes|k8s.io/kubernetes/cmd/kube-proxy|k8s.io/kubernetes@$K8S_VERSION|$(k8s_ldflags $K8S_VERSION)|
etcd|etcd|go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3@$ETCD_VERSION||
pulumi-resource-kubernetes|pulumi-resource-kubernetes|github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes|github.com/pulumi/pulumi-kubernetes/provider/v4@v4.34.2|-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=v4.34.2|
EOF
)"

if [ "$LIST" = 1 ]; then
  echo "$TOOLS" | awk -F'|' '{printf "%-28s %-70s wrapper=%s\n", $1, $4, $2}'
  exit 0
fi

command -v go >/dev/null || { echo "go not found on PATH" >&2; exit 2; }
mkdir -p "$BIN" "$STAMPS" "$LOGS" "$WORK"
cd "$WORK" || exit 2  # module-less directory for the `go mod download` checks
GOVER="$(go env GOVERSION)"
BASE_GOFLAGS="$(go env GOFLAGS) ${ENGINE_GOFLAGS:--p=2}"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

wrapper_hash() {
  local dir="$1"
  [ "$dir" = "-" ] && { echo none; return; }
  (cd "$WRAPPERS/$dir" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}

declare -a SUMMARY=() FAILED=()
TOTAL_START="$(now)"

build_one() {
  local name="$1" wrapper="$2" pkg="$3" modver="$4" ldx="$5" nosum="$6"
  local ver="${modver#*@}"
  local out="$BIN/$name" stampf="$STAMPS/$name.stamp" log="$LOGS/$name.log"
  local stamp t0 t1 rc
  stamp="tool=$name module=$modver pkg=$pkg wrapper=$wrapper:$(wrapper_hash "$wrapper") go=$GOVER ldflags=$(echo "$ldx" | sha256sum | cut -c1-16)"
  t0="$(now)"
  if [ "$FORCE" = 0 ] && [ -x "$out" ] && [ -f "$stampf" ] && [ "$(cat "$stampf")" = "$stamp" ]; then
    t1="$(now)"
    SUMMARY+=("$(printf '%-28s %-8s %7ss  %s' "$name" cached "$(secs "$t0" "$t1")" "$ver")")
    return 0
  fi
  echo "==> $name ($modver) building; log: $log"
  : >"$log"
  local envs=(GOFLAGS="$BASE_GOFLAGS")
  [ -n "$nosum" ] && envs+=(GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$nosum")
  rc=0
  # 1. Is the module at that version served by the proxy at all?
  if ! env "${envs[@]}" go mod download -json "$modver" >"$log.download" 2>&1 ||
     grep -q '"Error"' "$log.download"; then
    cat "$log.download" >>"$log"
    FAILED+=("$name: module $modver not available from the Go module proxy: $(grep -o '"Error": *"[^"]*' "$log.download" | head -1 | sed 's/"Error": *"//' | cut -c1-300)")
    rc=1
  else
    # 2. Build in a scratch copy of the wrapper so the repo tree is untouched.
    local wd="$WORK/$wrapper"
    rm -rf "$wd"; mkdir -p "$wd"; cp -R "$WRAPPERS/$wrapper/." "$wd/"
    (
      cd "$wd" || exit 1
      if [ ! -f go.sum ]; then
        echo "+ go mod tidy (wrapper has no go.sum)"
        env "${envs[@]}" go mod tidy || exit 1
      fi
      echo "+ go build -trimpath -ldflags '-s -w $ldx' -o $out.tmp $pkg"
      env "${envs[@]}" go build -trimpath -ldflags "-s -w $ldx" -o "$out.tmp" "$pkg"
    ) >>"$log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
      mv -f "$out.tmp" "$out" && echo "$stamp" >"$stampf"
    else
      rm -f "$out.tmp"
      FAILED+=("$name: build failed (rc=$rc): $(grep -v '^+ ' "$log" | tail -5 | tr '\n' ' ' | cut -c1-600)")
    fi
  fi
  t1="$(now)"
  if [ "$rc" = 0 ]; then
    SUMMARY+=("$(printf '%-28s %-8s %7ss  %s  %s' "$name" built "$(secs "$t0" "$t1")" "$ver" "$(du -h "$out" | cut -f1)")")
  else
    SUMMARY+=("$(printf '%-28s %-8s %7ss  %s' "$name" FAILED "$(secs "$t0" "$t1")" "$ver")")
  fi
}

while IFS='|' read -r name wrapper pkg modver ldx nosum; do
  [ -z "$name" ] && continue
  if [ -n "$ONLY" ] && ! [[ ",$ONLY," == *",$name,"* ]]; then continue; fi
  build_one "$name" "$wrapper" "$pkg" "$modver" "$ldx" "$nosum"
done <<<"$TOOLS"

echo
echo "== engine tools ($BIN), go $GOVER, GOFLAGS='$BASE_GOFLAGS', total $(secs "$TOTAL_START" "$(now)")s"
printf '%s\n' "${SUMMARY[@]}"
echo "cache size: $(du -sh "$BIN" | cut -f1) (bin)"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo
  echo "== failed (${#FAILED[@]}):"
  printf ' - %s\n' "${FAILED[@]}"
  [ "$REQUIRE_ALL" = 1 ] && exit 1
fi
exit 0
