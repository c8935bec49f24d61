#!/usr/bin/env bash
# Builds the STAND-IN packages (kubeadm, kubelet, kubectl, cri-tools,
# containerd.io) for the host test tier and a flat apt repository of them:
#   <repo>/.cache/standins/bin/standin        the static multi-call binary
#   <repo>/.cache/standins/repo/              *.deb, Packages, Packages.gz, Release
# Use on a host as:  deb [trusted=yes] http://<addr>:<port>/ ./
#
# Usage: build.sh [KUBERNETES_VERSION [CONTAINERD_VERSION]]
#   or env KUBERNETES_VERSION (default 1.36.4), CONTAINERD_VERSION (default 2.2.6).
#   KUBERNETES_VERSION may be a comma-separated list (e.g. 1.35.8,1.36.4): the
#   repo then offers kubeadm/kubelet/kubectl in each version (upgrade tests).
#   STANDINS_CACHE_DIR overrides <repo>/.cache/standins.
# Cached: the binary is rebuilt only when the Go sources or this script change,
# the repo only when the binary or the versions change. Prints the repo path
# on stdout (last line). Safe to run concurrently (flock).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../../.." && pwd)
cache=${STANDINS_CACHE_DIR:-$repo_root/.cache/standins}
k8s_versions=${1:-${KUBERNETES_VERSION:-1.36.4}}
containerd_version=${2:-${CONTAINERD_VERSION:-2.2.6}}
k8s_versions=${k8s_versions//v/}
cri_tools_version=1.36.0
arch=amd64

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "[standins build +$(elapsed)s] $*" >&2; }
die() {
    echo "[standins build] error: $*" >&2
    exit 1
}

IFS=, read -r -a k8s_list <<<"$k8s_versions"
for v in "${k8s_list[@]}"; do
    [[ $v =~ ^1\.[0-9]+\.[0-9]+$ ]] || die "KUBERNETES_VERSION '$v' is not 1.X.Y"
done
[[ $containerd_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CONTAINERD_VERSION '$containerd_version' is not X.Y.Z"
command -v go >/dev/null || die "go is not installed"
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed"
command -v dpkg-scanpackages >/dev/null || die "dpkg-scanpackages is not installed (apt-get install dpkg-dev)"

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

# --- 1. the binary -----------------------------------------------------------
src_stamp=$(cd "$here" && mapfile -t go_sources < <(printf '%s\n' ./*.go | LC_ALL=C sort) &&
    cat go.mod go.sum build.sh "${go_sources[@]}" | sha256sum | cut -c1-16)
bin=$cache/bin/standin
if [[ -x $bin && -f $cache/bin/.stamp && $(cat "$cache/bin/.stamp") == "$src_stamp" ]]; then
    log "binary cached ($src_stamp)"
else
    log "building the binary ($src_stamp)"
    mkdir -p "$cache/bin"
    (cd "$here" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOFLAGS=-mod=readonly \
        go build -trimpath -ldflags='-s -w' -o "$bin.tmp" .) || die "go build failed"
    mv -f "$bin.tmp" "$bin"
    printf '%s\n' "$src_stamp" >"$cache/bin/.stamp"
    log "built $(du -h "$bin" | cut -f1) static binary"
fi

# --- 2. packages and the apt repository ----------------------------------------
repo=$cache/repo
repo_stamp=$(printf '%s %s %s\n' "$src_stamp" "$k8s_versions" "$containerd_version" | sha256sum | cut -c1-16)
if [[ -f $repo/Packages.gz && -f $repo/.stamp && $(cat "$repo/.stamp") == "$repo_stamp" ]]; then
    log "repository cached at $repo ($repo_stamp)"
    printf '%s\n' "$repo"
    exit 0
fi
log "building packages for Kubernetes ${k8s_versions}, containerd $containerd_version"
work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
out=$work/repo
mkdir -p "$out"

# pkg NAME VERSION TOOL DESCRIPTION-TAIL [DEPENDS]: start a package tree with
# the binary at /usr/bin/TOOL and a version file; sets $root.
pkg() {
    local name=$1 version=$2 tool=$3 tail=$4 depends=${5:-}
    root=$work/$name-$version
    mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/kubeadm-pulumi-standins/versions" "$root/usr/share/doc/$name"
    install -m 0755 "$bin" "$root/usr/bin/$tool"
    printf '%s\n' "${version%%-*}" >"$root/usr/share/kubeadm-pulumi-standins/versions/$tool"
    printf 'STAND-IN package built by kubeadm-pulumi tests/hosts/standins/build.sh.\nNot the real %s. See tests/hosts/standins/README.md.\n' "$name" \
        >"$root/usr/share/doc/$name/README.STANDIN"
    {
        printf 'Package: %s\nVersion: %s\nArchitecture: %s\n' "$name" "$version" "$arch"
        printf 'Maintainer: kubeadm-pulumi tests <standins@kubeadm-pulumi.invalid>\n'
        printf 'Section: admin\nPriority: optional\n'
        [[ -z $depends ]] || printf 'Depends: %s\n' "$depends"
        [[ -z ${PKG_EXTRA:-} ]] || printf '%s\n' "$PKG_EXTRA"
        printf 'Description: STAND-IN for tests, not the real %s\n %s\n' "$name" "$tail"
        printf ' Built from tests/hosts/standins (a Go multi-call binary) so that the\n'
        printf ' kubeadm-pulumi host tests can run without internet access. It records\n'
        printf ' every call in /var/log/kubeadm-pulumi-standins/ and validates its inputs.\n'
    } >"$root/DEBIAN/control"
}

# reload_scripts: postinst/postrm that only reload systemd (never start anything).
reload_scripts() {
    local s
    for s in postinst postrm; do
        cat >"$root/DEBIAN/$s" <<'EOF'
#!/bin/sh
set -e
# STAND-IN package: make systemd see the unit; do not start anything.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
        chmod 0755 "$root/DEBIAN/$s"
    done
}

build_deb() {
    dpkg-deb --root-owner-group -Zgzip --build "$root" "$out/" >/dev/null || die "dpkg-deb failed for $root"
}

for kv in "${k8s_list[@]}"; do
    # kubelet
    pkg kubelet "$kv-1.1" kubelet "the node agent: exits until kubeadm wrote /var/lib/kubelet/config.yaml, then simulates a node's host state (CNI files, interfaces, iptables/nftables rules); runs no pods." "mount, util-linux"
    mkdir -p "$root/usr/lib/systemd/system/kubelet.service.d"
    cat >"$root/usr/lib/systemd/system/kubelet.service" <<'EOF'
# STAND-IN for tests (kubeadm-pulumi), shaped like the real kubelet.service.
[Unit]
Description=kubelet: The Kubernetes Node Agent (STAND-IN for tests)
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF
    cat >"$root/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'EOF'
# STAND-IN for tests (kubeadm-pulumi), same as the real drop-in.
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
EOF
    chmod 0644 "$root/usr/lib/systemd/system/kubelet.service" "$root/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    reload_scripts
    build_deb

    pkg kubeadm "$kv-1.1" kubeadm "validates v1beta4 configs strictly, checks the shared PKI and preflight conditions, writes stand-in kubeconfigs and manifests; creates no cluster."
    build_deb
    pkg kubectl "$kv-1.1" kubectl "talks to no API server: validates bootstrap token Secrets and records node operations in /var/lib/kubeadm-pulumi-standins/api."
    build_deb
done

pkg cri-tools "$cri_tools_version-1.1" crictl "crictl against the containerd stand-in's socket; images are names in /var/lib/kubeadm-pulumi-standins/images."
build_deb

PKG_EXTRA=$'Provides: containerd, runc\nConflicts: containerd, runc\nReplaces: containerd, runc' \
    pkg containerd.io "$containerd_version-1~debian.12~bookworm" containerd "refuses configs without the CRI plugin, version 3 and SystemdCgroup = true; listens on /run/containerd/containerd.sock; runs no containers."
mkdir -p "$root/usr/lib/systemd/system" "$root/etc/containerd"
cat >"$root/usr/lib/systemd/system/containerd.service" <<'EOF'
# STAND-IN for tests (kubeadm-pulumi), shaped like Docker's containerd.service.
[Unit]
Description=containerd container runtime (STAND-IN for tests)
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
Type=simple
ExecStart=/usr/bin/containerd
KillMode=process
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
cat >"$root/etc/containerd/config.toml" <<'EOF'
#   STAND-IN for tests (kubeadm-pulumi): the same effective content as the
#   config.toml Docker's containerd.io package ships, which disables the CRI
#   plugin that Kubernetes needs. The prepare step must overwrite this file.

disabled_plugins = ["cri"]

#root = "/var/lib/containerd"
#state = "/run/containerd"
#subreaper = true
#oom_score = 0

#[grpc]
#  address = "/run/containerd/containerd.sock"
#  uid = 0
#  gid = 0

#[debug]
#  address = "/run/containerd/debug.sock"
#  uid = 0
#  gid = 0
#  level = "info"
EOF
chmod 0644 "$root/usr/lib/systemd/system/containerd.service" "$root/etc/containerd/config.toml"
printf '/etc/containerd/config.toml\n' >"$root/DEBIAN/conffiles"
# ctr ships in containerd.io too; the prepare step uses it (crictl is not a dependency of kubeadm any more)
install -m 0755 "$bin" "$root/usr/bin/ctr"
reload_scripts
build_deb

(cd "$out" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages) || die "dpkg-scanpackages failed"
gzip -9nc "$out/Packages" >"$out/Packages.gz"
{
    printf 'Origin: kubeadm-pulumi-standins\nLabel: STAND-IN packages for kubeadm-pulumi tests\n'
    printf 'Date: %s\n' "$(date -u -R)"
    printf 'Architectures: %s\nDescription: STAND-IN kubeadm/kubelet/kubectl/cri-tools/containerd.io for tests, not the real ones\n' "$arch"
    printf 'SHA256:\n'
    for f in Packages Packages.gz; do
        printf ' %s %s %s\n' "$(sha256sum "$out/$f" | cut -d' ' -f1)" "$(stat -c %s "$out/$f")" "$f"
    done
} >"$out/Release"
printf '%s\n' "$repo_stamp" >"$out/.stamp"
rm -rf "$repo.old"
[[ ! -e $repo ]] || mv "$repo" "$repo.old"
mv "$out" "$repo"
rm -rf "$repo.old"
debs=("$repo"/*.deb)
log "repository ready at $repo: ${#debs[@]} packages"
printf '%s\n' "$repo"
