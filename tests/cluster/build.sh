#!/usr/bin/env bash
# Builds everything a REAL cluster needs on the sandbox hosts, from Go modules
# (the Go module proxy) and Debian packages only, into a git-ignored cache:
#
#   <repo>/.cache/cluster/bin/<tool>        real binaries (see the table below)
#   <repo>/.cache/cluster/repo/             flat apt repository: containerd.io,
#                                           kubelet, kubeadm, kubectl, kubernetes-cni
#   <repo>/.cache/cluster/registry/data/    storage of a distribution registry holding
#                                           the control-plane, CoreDNS, pause and flannel
#                                           images (served by the test, with TLS, on the
#                                           sandbox gateway)
#   <repo>/.cache/cluster/images.txt        every image reference pushed (repository:tag)
#
# Nothing here is a stand-in: every binary is built from its upstream module at
# the version below, and a component that cannot be had is reported, never replaced.
# Kubernetes binaries come from tests/engine/build-tools.sh (shared cache
# .cache/engine). Idempotent: each output carries a stamp of its recipe (module,
# version, flags, this script's hash for packaging/images, go version).
#
# Usage: tests/cluster/build.sh [--force]
# Environment: CLUSTER_CACHE (default <repo>/.cache/cluster), CLUSTER_GOFLAGS
# (default -p=2: the machine has 2 cores), CLUSTER_MIRROR (Debian mirror for the
# image base; default: the one apt already uses).
# Needs root (debootstrap), go, gcc, dpkg-dev, debootstrap, libseccomp-dev
# (installed with apt-get when missing). Prints the cache dir as the last line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${CLUSTER_CACHE:-$ROOT/.cache/cluster}
BIN=$CACHE/bin
STAMPS=$CACHE/stamps
LOGS=$CACHE/logs
WORK=$CACHE/work
ENGINE_BIN=${ENGINE_CACHE:-$ROOT/.cache/engine}/bin
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

# --- versions (each: where the number comes from) ------------------------------
K8S_VERSION=1.36.4         # components/versions.ts DEFAULT_KUBERNETES_VERSION
ETCD_VERSION=3.6.8         # kubeadm v1.36.4 `config images list`: etcd:3.6.8-0
ETCD_IMAGE_TAG=3.6.8-0
COREDNS_VERSION=1.14.2     # kubeadm v1.36.4 `config images list`: coredns/coredns:v1.14.2
PAUSE_VERSION=3.10.2       # kubeadm v1.36.4 `config images list`; build/pause/Makefile TAG
CONTAINERD_VERSION=2.2.6   # components/versions.ts CONTAINERD_VERSION (the proxy serves it)
RUNC_VERSION=1.3.6         # containerd v2.2.6 script/setup/runc-version
CNI_PLUGINS_VERSION=1.9.1  # newest containernetworking/plugins release the proxy lists
# flannel's CNI plugin: github.com/flannel-io/cni-plugin is refused by the proxy
# (403); containernetworking/plugins v0.9.1 is the last release that still had
# plugins/meta/flannel (removed in v1.0.0), the same plugin before it moved.
FLANNEL_CNI_FROM_PLUGINS=0.9.1
# flanneld + chart: components/versions.ts pins the chart v0.28.5, which the proxy
# refuses (403, like v0.28.3/6/8); v0.28.4 is the nearest served release. Its
# module zip carries the chart (chart/kube-flannel), used offline.
FLANNEL_VERSION=0.28.4
HELM_VERSION=3.19.5
# Add-ons that can be had here (components/versions.ts ADDON_IMAGES): metrics-server
# v0.9.0 (its module zip carries the pinned chart 3.13.1, charts/metrics-server);
# agnhost 2.63.0 (k8s.io/kubernetes v1.36.4 test/images/agnhost/VERSION), the smoke
# test's workload, on the image base plus Debian's busybox-static (upstream's image is
# alpine: the smoke test's Job uses busybox wget and nslookup). Traefik's and
# Headlamp's charts are refused by the proxy (403), so the ingress and the dashboard
# do not run here.
METRICS_SERVER_VERSION=0.9.0
AGNHOST_VERSION=2.63.0
DISTRIBUTION_VERSION=3.1.2 # github.com/distribution/distribution/v3: the local OCI registry
GGCR_VERSION=0.21.9        # github.com/google/go-containerregistry: crane, to build and push images
DEB_REVISION=1.1           # pkgs.k8s.io style revision (kubeadm=1.36.4-1.1)
CONTAINERD_DEB_VERSION=$CONTAINERD_VERSION-1~debian.12~bookworm  # Docker's containerd.io style
ARCH=amd64

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "[cluster build +$(elapsed)s] $*" >&2; }
die() {
    echo "[cluster build] error: $*" >&2
    exit 1
}

[[ $(id -u) == 0 ]] || die "must run as root (debootstrap)"
command -v go >/dev/null || die "go is not installed"
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v debootstrap >/dev/null || need+=(debootstrap)
[[ -f /usr/include/seccomp.h ]] || need+=(libseccomp-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2; } ||
        die "apt-get install ${need[*]} failed"
fi

mkdir -p "$BIN" "$STAMPS" "$LOGS" "$WORK"
exec 9>"$CACHE/.build.lock"
flock 9

GOVER=$(go env GOVERSION)
GOFLAGS_BASE="$(go env GOFLAGS) -trimpath ${CLUSTER_GOFLAGS:--p=2}"
SELF_HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
declare -a SUMMARY=()

fresh() { # fresh NAME STAMP: the output NAME is built with this recipe
    [[ $FORCE == 0 && -f $STAMPS/$1.stamp && $(cat "$STAMPS/$1.stamp") == "$2" ]]
}

# --- 1. Kubernetes and etcd (tests/engine/build-tools.sh) ---------------------------
s=$(date +%s)
bash "$ROOT/tests/engine/build-tools.sh" --require-all \
    --only kubeadm,kubectl,kubelet,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy,etcd >&2 ||
    die "building the Kubernetes binaries failed (see above)"
SUMMARY+=("kubernetes v$K8S_VERSION + etcd v$ETCD_VERSION (tests/engine/build-tools.sh): $(($(date +%s) - s)) s")

# --- 2. Go tools: go install MODULE/PKG@VERSION --------------------------------------
# gobuild NAME CGO TAGS LDFLAGS PKG@VERSION [PKG@VERSION...]: binaries land in bin/<NAME>/.
gobuild() {
    local name=$1 cgo=$2 tags=$3 ldflags=$4
    shift 4
    local stamp out=$BIN/$name
    stamp="$* cgo=$cgo tags=$tags ldflags=$(sha256sum <<<"$ldflags" | cut -c1-16) go=$GOVER"
    if fresh "$name" "$stamp" && [[ -d $out ]]; then
        SUMMARY+=("$(printf '%-18s cached  %s' "$name" "$*")")
        return 0
    fi
    local s
    s=$(date +%s)
    log "building $name: $*"
    rm -rf "$out.tmp"
    mkdir -p "$out.tmp"
    # A module-less directory: `go install pkg@version` builds with the module's own go.mod.
    if ! (cd "$WORK" && env GOFLAGS="$GOFLAGS_BASE" CGO_ENABLED="$cgo" GOBIN="$out.tmp" \
        go install ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" "$@") >"$LOGS/$name.log" 2>&1; then
        tail -n 20 "$LOGS/$name.log" >&2
        die "building $name failed ($*); log: $LOGS/$name.log"
    fi
    rm -rf "$out"
    mv "$out.tmp" "$out"
    printf '%s\n' "$stamp" >"$STAMPS/$name.stamp"
    SUMMARY+=("$(printf '%-18s built   %s  %s s' "$name" "$*" "$(($(date +%s) - s))")")
}

CTRD=github.com/containerd/containerd/v2
gobuild containerd 1 "" "-X $CTRD/version.Version=v$CONTAINERD_VERSION -X $CTRD/version.Package=$CTRD" \
    "$CTRD/cmd/containerd@v$CONTAINERD_VERSION" "$CTRD/cmd/ctr@v$CONTAINERD_VERSION"
# The shim is static upstream (Makefile SHIM_CGO_ENABLED=0).
gobuild containerd-shim 0 "" "-X $CTRD/version.Version=v$CONTAINERD_VERSION -X $CTRD/version.Package=$CTRD" \
    "$CTRD/cmd/containerd-shim-runc-v2@v$CONTAINERD_VERSION"
# runc needs cgo (nsenter); seccomp through Debian's libseccomp (libseccomp-dev to build, libseccomp2 at run time).
gobuild runc 1 seccomp "-X main.version=$RUNC_VERSION" "github.com/opencontainers/runc@v$RUNC_VERSION"
CNI=github.com/containernetworking/plugins
cni_pkgs=()
for p in main/bridge main/host-device main/ipvlan main/loopback main/macvlan main/ptp main/vlan main/dummy main/tap \
    ipam/dhcp ipam/host-local ipam/static meta/bandwidth meta/firewall meta/portmap meta/sbr meta/tuning meta/vrf; do
    cni_pkgs+=("$CNI/plugins/$p@v$CNI_PLUGINS_VERSION")
done
gobuild cni-plugins 0 "" "-X $CNI/pkg/utils/buildversion.BuildVersion=v$CNI_PLUGINS_VERSION" "${cni_pkgs[@]}"
gobuild flannel-cni 0 "" "-X $CNI/pkg/utils/buildversion.BuildVersion=v$FLANNEL_CNI_FROM_PLUGINS" \
    "$CNI/plugins/meta/flannel@v$FLANNEL_CNI_FROM_PLUGINS"
gobuild coredns 0 "" "" "github.com/coredns/coredns@v$COREDNS_VERSION"
# wrapbuild NAME CGO LDFLAGS PKG: go build PKG in a scratch copy of wrappers/NAME (a
# module that requires the upstream one, for modules `go install` cannot build as is).
wrapbuild() {
    local name=$1 cgo=$2 ldflags=$3 pkg=$4 stamp s wd=$WORK/wrapper-$1
    stamp="$pkg wrapper=$( (cd "$HERE/wrappers/$name" && cat go.mod go.sum) | sha256sum | cut -c1-16) cgo=$cgo ldflags=$(sha256sum <<<"$ldflags" | cut -c1-16) go=$GOVER"
    if fresh "$name" "$stamp" && [[ -d $BIN/$name ]]; then
        SUMMARY+=("$(printf '%-18s cached  %s (wrappers/%s)' "$name" "$pkg" "$name")")
        return 0
    fi
    s=$(date +%s)
    log "building $name: $pkg (wrappers/$name)"
    rm -rf "$wd" "$BIN/$name.tmp"
    mkdir -p "$BIN/$name.tmp"
    cp -R "$HERE/wrappers/$name" "$wd"
    if ! (cd "$wd" && env GOFLAGS="$GOFLAGS_BASE -mod=readonly" CGO_ENABLED="$cgo" \
        go build -ldflags "-s -w $ldflags" -o "$BIN/$name.tmp/" "$pkg") >"$LOGS/$name.log" 2>&1; then
        tail -n 20 "$LOGS/$name.log" >&2
        die "building $name failed ($pkg); log: $LOGS/$name.log"
    fi
    rm -rf "${BIN:?}/$name"
    mv "$BIN/$name.tmp" "$BIN/$name"
    printf '%s\n' "$stamp" >"$STAMPS/$name.stamp"
    SUMMARY+=("$(printf '%-18s built   %s (wrappers/%s)  %s s' "$name" "$pkg" "$name" "$(($(date +%s) - s))")")
}
# flanneld: cgo (its udp backend), static, as upstream's Makefile builds it.
wrapbuild flanneld 1 "-X github.com/flannel-io/flannel/pkg/version.Version=v$FLANNEL_VERSION -extldflags -static" \
    github.com/flannel-io/flannel
gobuild helm 0 "" "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
gobuild metrics-server 0 "" "" "sigs.k8s.io/metrics-server/cmd/metrics-server@v$METRICS_SERVER_VERSION"
wrapbuild agnhost 0 "" k8s.io/kubernetes/test/images/agnhost
# busybox (the agnhost image's wget, nslookup): Debian's static build, as packaged.
bb_version=$(apt-cache policy busybox-static 2>/dev/null | awk '/Candidate:/ { print $2 }')
if [[ -z $bb_version || $bb_version == "(none)" ]]; then # (a clean machine: apt's lists not fetched yet)
    apt-get update -qq >"$LOGS/apt-update.log" 2>&1 || true
    bb_version=$(apt-cache policy busybox-static 2>/dev/null | awk '/Candidate:/ { print $2 }')
fi
[[ -n $bb_version && $bb_version != "(none)" ]] || die "busybox-static is not in apt's lists (see $LOGS/apt-update.log)"
if fresh busybox "busybox-static $bb_version" && [[ -x $BIN/busybox/busybox ]]; then
    SUMMARY+=("busybox            cached  busybox-static $bb_version")
else
    rm -rf "$WORK/busybox" && mkdir -p "$WORK/busybox" "$BIN/busybox"
    (cd "$WORK/busybox" && apt-get download "busybox-static=$bb_version" >"$LOGS/busybox.log" 2>&1) || die "apt-get download busybox-static failed (see $LOGS/busybox.log)"
    dpkg-deb -x "$WORK"/busybox/busybox-static_*.deb "$WORK/busybox/root"
    install -m 0755 "$WORK/busybox/root/bin/busybox" "$BIN/busybox/busybox"
    printf '%s\n' "busybox-static $bb_version" >"$STAMPS/busybox.stamp"
    SUMMARY+=("busybox            built   busybox-static $bb_version (Debian)")
fi
gobuild registry 0 "" "-X github.com/distribution/distribution/v3/version.version=v$DISTRIBUTION_VERSION" \
    "github.com/distribution/distribution/v3/cmd/registry@v$DISTRIBUTION_VERSION"
gobuild crane 0 "" "" "github.com/google/go-containerregistry/cmd/crane@v$GGCR_VERSION"

# Module directories (sources of non-Go files: pause.c, containerd.service, the flannel chart).
moddir() { (cd "$WORK" && GOFLAGS="" go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); }
K8S_DIR=$(moddir "k8s.io/kubernetes@v$K8S_VERSION")
CTRD_DIR=$(moddir "$CTRD@v$CONTAINERD_VERSION")
FLANNEL_DIR=$(moddir "github.com/flannel-io/flannel@v$FLANNEL_VERSION")
MS_DIR=$(moddir "sigs.k8s.io/metrics-server@v$METRICS_SERVER_VERSION")
[[ -f $MS_DIR/charts/metrics-server/Chart.yaml ]] || die "sigs.k8s.io/metrics-server@v$METRICS_SERVER_VERSION has no charts/metrics-server"
[[ -f $K8S_DIR/build/pause/linux/pause.c && -f $CTRD_DIR/containerd.service && -d $FLANNEL_DIR/chart/kube-flannel ]] ||
    die "module sources incomplete: $K8S_DIR $CTRD_DIR $FLANNEL_DIR"

# pause: build/pause/linux/pause.c of k8s.io/kubernetes, static, flags as in build/pause/Makefile.
stamp="pause $PAUSE_VERSION $(sha256sum "$K8S_DIR/build/pause/linux/pause.c" | cut -c1-16) $(gcc -dumpfullversion)"
if ! fresh pause "$stamp" || [[ ! -x $BIN/pause/pause ]]; then
    mkdir -p "$BIN/pause"
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-kubeadm-pulumi" -o "$BIN/pause/pause" "$K8S_DIR/build/pause/linux/pause.c" ||
        die "gcc pause.c failed"
    strip "$BIN/pause/pause"
    printf '%s\n' "$stamp" >"$STAMPS/pause.stamp"
    SUMMARY+=("pause              built   k8s.io/kubernetes@v$K8S_VERSION build/pause/linux/pause.c (gcc -static)")
else
    SUMMARY+=("pause              cached")
fi
# The chart is read by every run (and by a real `pulumi preview` pointed at it):
# copied only when its flannel version changes, and swapped in with one rename,
# so a concurrent reader never finds it missing or half-copied.
chart_stamp="flannel v$FLANNEL_VERSION"
if [[ $(cat "$STAMPS/chart.stamp" 2>/dev/null) != "$chart_stamp" || ! -f $CACHE/charts/kube-flannel/Chart.yaml ]]; then
    mkdir -p "$CACHE/charts"
    rm -rf "$CACHE/charts/.kube-flannel.new" "$CACHE/charts/.kube-flannel.old"
    cp -R "$FLANNEL_DIR/chart/kube-flannel" "$CACHE/charts/.kube-flannel.new"
    chmod -R u+w "$CACHE/charts/.kube-flannel.new"
    [[ ! -e $CACHE/charts/kube-flannel ]] || mv "$CACHE/charts/kube-flannel" "$CACHE/charts/.kube-flannel.old"
    mv "$CACHE/charts/.kube-flannel.new" "$CACHE/charts/kube-flannel"
    rm -rf "$CACHE/charts/.kube-flannel.old"
    printf '%s\n' "$chart_stamp" >"$STAMPS/chart.stamp"
fi
ms_chart_stamp="metrics-server module v$METRICS_SERVER_VERSION"
if [[ $(cat "$STAMPS/chart-metrics-server.stamp" 2>/dev/null) != "$ms_chart_stamp" || ! -f $CACHE/charts/metrics-server/Chart.yaml ]]; then
    mkdir -p "$CACHE/charts"
    rm -rf "$CACHE/charts/.metrics-server.new" "$CACHE/charts/.metrics-server.old"
    cp -R "$MS_DIR/charts/metrics-server" "$CACHE/charts/.metrics-server.new"
    chmod -R u+w "$CACHE/charts/.metrics-server.new"
    [[ ! -e $CACHE/charts/metrics-server ]] || mv "$CACHE/charts/metrics-server" "$CACHE/charts/.metrics-server.old"
    mv "$CACHE/charts/.metrics-server.new" "$CACHE/charts/metrics-server"
    rm -rf "$CACHE/charts/.metrics-server.old"
    printf '%s\n' "$ms_chart_stamp" >"$STAMPS/chart-metrics-server.stamp"
fi

# --- 3. .deb packages and the flat apt repository -----------------------------------
# Modelled on pkgs.k8s.io (kubernetes/release cmd/krel/templates/latest: kubelet
# Depends kubernetes-cni (>= 1.2.0), mount, util-linux, Recommends iptables;
# kubeadm >= 1.32 has no Depends; kubeadm ships the kubelet drop-in) and on
# Docker's containerd.io (containerd, shim, ctr and runc; Provides/Conflicts/
# Replaces containerd, runc; a config.toml conffile with disabled_plugins = ["cri"]).
repo=$CACHE/repo
repo_stamp="$SELF_HASH $(cat "$STAMPS"/{containerd,containerd-shim,runc,cni-plugins}.stamp "$ROOT"/.cache/engine/stamps/{kubeadm,kubectl,kubelet}.stamp 2>/dev/null | sha256sum | cut -c1-16)"
if fresh repo "$repo_stamp" && [[ -f $repo/Packages.gz ]]; then
    SUMMARY+=("apt repository     cached  $repo")
else
    s=$(date +%s)
    pw=$(mktemp -d "$WORK/debs.XXXXXX")
    out=$pw/repo
    mkdir -p "$out"
    # deb NAME VERSION SECTION DESCRIPTION CONTROL-EXTRA: start a package tree; sets $root.
    deb() {
        root=$pw/$1
        mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$1"
        {
            printf 'Package: %s\nVersion: %s\nArchitecture: %s\n' "$1" "$2" "$ARCH"
            printf 'Maintainer: kubeadm-pulumi tests <cluster@kubeadm-pulumi.invalid>\nSection: %s\nPriority: optional\n' "$3"
            [[ -z $5 ]] || printf '%s\n' "$5"
            printf 'Description: %s\n Built by kubeadm-pulumi tests/cluster/build.sh from the upstream Go module\n (see /usr/share/doc/%s/BUILT-FROM). Not an official build.\n' "$4" "$1"
        } >"$root/DEBIAN/control"
    }
    built_from() { printf '%s\n' "$@" >"$root/usr/share/doc/$pkgname/BUILT-FROM"; }
    build_deb() {
        (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 -r md5sum >DEBIAN/md5sums)
        dpkg-deb --root-owner-group -Zgzip --build "$root" "$out/" >/dev/null || die "dpkg-deb failed for $root"
    }
    systemd_scripts() { # systemd_scripts UNIT ENABLE START: postinst/prerm/postrm like dh_installsystemd
        cat >"$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ] && command -v deb-systemd-helper >/dev/null 2>&1; then
    if [ "$2" = yes ]; then
        deb-systemd-helper unmask '$1' >/dev/null || true
        if deb-systemd-helper --quiet was-enabled '$1'; then deb-systemd-helper enable '$1' >/dev/null || true
        else deb-systemd-helper update-state '$1' >/dev/null || true; fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ "$3" = yes ]; then deb-systemd-invoke restart '$1' >/dev/null || true; fi
    fi
fi
exit 0
EOF
        cat >"$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
    deb-systemd-invoke stop '$1' >/dev/null || true
fi
exit 0
EOF
        cat >"$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi
if [ "\$1" = purge ] && command -v deb-systemd-helper >/dev/null 2>&1; then deb-systemd-helper purge '$1' >/dev/null || true; fi
exit 0
EOF
        chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
    }
    kv=$K8S_VERSION-$DEB_REVISION

    pkgname=kubernetes-cni
    deb kubernetes-cni "$CNI_PLUGINS_VERSION-$DEB_REVISION" net "Binaries required to provision kubernetes container networking" ""
    install -d "$root/opt/cni/bin" "$root/etc/cni/net.d"
    install -m 0755 "$BIN"/cni-plugins/* "$root/opt/cni/bin/"
    built_from "$CNI@v$CNI_PLUGINS_VERSION (plugins/{main,ipam,meta}/*)"
    build_deb

    pkgname=kubelet
    deb kubelet "$kv" net "Node agent for Kubernetes clusters" \
        $'Depends: kubernetes-cni (>= 1.2.0), mount, util-linux\nRecommends: iptables (>= 1.8.4)'
    install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/var/lib/kubelet" "$root/etc/kubernetes/manifests" "$root/etc/default"
    install -m 0755 "$ENGINE_BIN/kubelet" "$root/usr/bin/kubelet"
    touch "$root/var/lib/kubelet/.kubelet-keep" "$root/etc/kubernetes/manifests/.kubelet-keep"
    printf 'KUBELET_EXTRA_ARGS=\n' >"$root/etc/default/kubelet"
    printf '/etc/default/kubelet\n' >"$root/DEBIAN/conffiles"
    cat >"$root/lib/systemd/system/kubelet.service" <<'EOF'
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
EOF
    systemd_scripts kubelet.service yes no
    built_from "k8s.io/kubernetes@v$K8S_VERSION cmd/kubelet (tests/engine/build-tools.sh)"
    build_deb

    pkgname=kubeadm
    deb kubeadm "$kv" admin "Command-line utility for administering a Kubernetes cluster" ""
    install -d "$root/usr/bin" "$root/lib/systemd/system/kubelet.service.d"
    install -m 0755 "$ENGINE_BIN/kubeadm" "$root/usr/bin/kubeadm"
    cat >"$root/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'EOF'
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
EOF
    built_from "k8s.io/kubernetes@v$K8S_VERSION cmd/kubeadm (tests/engine/build-tools.sh)"
    build_deb

    pkgname=kubectl
    deb kubectl "$kv" admin "Command-line utility for interacting with a Kubernetes cluster" ""
    install -d "$root/usr/bin"
    install -m 0755 "$ENGINE_BIN/kubectl" "$root/usr/bin/kubectl"
    built_from "k8s.io/kubernetes@v$K8S_VERSION cmd/kubectl (tests/engine/build-tools.sh)"
    build_deb

    pkgname=containerd.io
    deb containerd.io "$CONTAINERD_DEB_VERSION" devel "An open and reliable container runtime" \
        $'Depends: libc6 (>= 2.34), libseccomp2 (>= 2.5.0)\nProvides: containerd, runc\nConflicts: containerd, runc\nReplaces: containerd, runc'
    install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/containerd"
    install -m 0755 "$BIN/containerd/containerd" "$BIN/containerd/ctr" "$BIN/containerd-shim/containerd-shim-runc-v2" "$BIN/runc/runc" "$root/usr/bin/"
    # containerd's own unit (module root), with the binary where the package puts it.
    sed 's#^ExecStart=/usr/local/bin/containerd#ExecStart=/usr/bin/containerd#' "$CTRD_DIR/containerd.service" >"$root/lib/systemd/system/containerd.service"
    grep -q '^ExecStart=/usr/bin/containerd$' "$root/lib/systemd/system/containerd.service" || die "containerd.service: ExecStart not rewritten"
    cat >"$root/etc/containerd/config.toml" <<'EOF'
# As in Docker's containerd.io package: the CRI plugin is disabled, so this
# containerd serves Docker but not the kubelet until this file is replaced.
disabled_plugins = ["cri"]

#root = "/var/lib/containerd"
#state = "/run/containerd"
#subreaper = true
#oom_score = 0

#[grpc]
#  address = "/run/containerd/containerd.sock"
#  uid = 0
#  gid = 0
EOF
    printf '/etc/containerd/config.toml\n' >"$root/DEBIAN/conffiles"
    systemd_scripts containerd.service yes yes
    built_from "$CTRD@v$CONTAINERD_VERSION cmd/containerd, cmd/ctr (cgo), cmd/containerd-shim-runc-v2 (static)" \
        "github.com/opencontainers/runc@v$RUNC_VERSION (cgo, -tags seccomp, Debian libseccomp)" \
        "containerd.service from the containerd module root, ExecStart moved to /usr/bin"
    build_deb

    (cd "$out" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages) || die "dpkg-scanpackages failed"
    gzip -9nc "$out/Packages" >"$out/Packages.gz"
    {
        printf 'Origin: kubeadm-pulumi-cluster\nLabel: real Kubernetes and containerd packages built from Go modules for kubeadm-pulumi tests\n'
        printf 'Date: %s\nArchitectures: %s\nSHA256:\n' "$(date -u -R)" "$ARCH"
        for f in Packages Packages.gz; do
            printf ' %s %s %s\n' "$(sha256sum "$out/$f" | cut -d' ' -f1)" "$(stat -c %s "$out/$f")" "$f"
        done
    } >"$out/Release"
    rm -rf "$repo"
    mv "$out" "$repo"
    rm -rf "$pw"
    printf '%s\n' "$repo_stamp" >"$STAMPS/repo.stamp"
    SUMMARY+=("apt repository     built   $(find "$repo" -name '*.deb' | wc -l) packages, $(du -sh "$repo" | cut -f1), $(($(date +%s) - s)) s")
fi

# --- 4. image base: Debian 12 minbase with iptables/nftables (kube-proxy, flanneld) ---
base_tar=$CACHE/base/rootfs.tar
# Bump the recipe number when this step changes (not keyed on the whole script:
# a debootstrap takes 1.5-4 minutes).
base_stamp="bookworm minbase iptables nftables ca-certificates recipe=1"
if fresh base "$base_stamp" && [[ -f $base_tar ]]; then
    SUMMARY+=("image base         cached  $base_tar")
else
    s=$(date +%s)
    # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
    mirror=${CLUSTER_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2 == "bookworm" { print $1; exit }')}
    [[ -n $mirror ]] || die "no Debian bookworm mirror in apt's sources; set CLUSTER_MIRROR"
    rm -rf "$CACHE/base"
    mkdir -p "$CACHE/base"
    tmp=$CACHE/base/rootfs
    log "debootstrap the image base from $mirror"
    debootstrap --variant=minbase --include=iptables,nftables,ca-certificates bookworm "$tmp" "$mirror" \
        >"$LOGS/debootstrap.log" 2>&1 || { tail -n 20 "$LOGS/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "${tmp:?}"/var/cache/apt/archives/*.deb "${tmp:?}"/var/cache/apt/*.bin "${tmp:?}"/var/lib/apt/lists/* \
        "${tmp:?}"/usr/share/doc/* "${tmp:?}"/usr/share/man/* "${tmp:?}"/usr/share/info/* "${tmp:?}"/var/log/* "${tmp:?}"/dev/* "${tmp:?}"/run/*
    find "$tmp/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    tar --numeric-owner --sort=name --mtime=@0 -C "$tmp" -cf "$base_tar" .
    rm -rf "$tmp"
    printf '%s\n' "$base_stamp" >"$STAMPS/base.stamp"
    SUMMARY+=("image base         built   $(du -h "$base_tar" | cut -f1) tar, $(($(date +%s) - s)) s")
fi

# --- 5. images, pushed into a registry whose storage is cached ---------------------
# The registry runs here on loopback (plain HTTP) only while pushing; the test
# serves the same storage on the sandbox gateway with TLS from a per-run CA.
images_stamp="$SELF_HASH $(cat "$STAMPS"/{base,pause,coredns,flanneld,flannel-cni,crane,registry,metrics-server,agnhost,busybox}.stamp "$ROOT"/.cache/engine/stamps/{kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy,etcd}.stamp | sha256sum | cut -c1-16)"
if fresh images "$images_stamp" && [[ -s $CACHE/images.txt ]]; then
    SUMMARY+=("images             cached  $(wc -l <"$CACHE/images.txt") in $CACHE/registry/data")
else
    s=$(date +%s)
    rm -rf "$CACHE/registry"
    mkdir -p "$CACHE/registry/data"
    port=$((20000 + RANDOM % 20000))
    cat >"$CACHE/registry/push.yml" <<EOF
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $CACHE/registry/data }
http:
  addr: 127.0.0.1:$port
EOF
    "$BIN/registry/registry" serve "$CACHE/registry/push.yml" >"$LOGS/registry-push.log" 2>&1 &
    regpid=$!
    trap 'kill $regpid 2>/dev/null || true' EXIT
    reg=127.0.0.1:$port
    for _ in $(seq 50); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
    curl -fsS "http://$reg/v2/" >/dev/null || die "the local registry did not start: $(cat "$LOGS/registry-push.log")"
    crane() { "$BIN/crane/crane" --insecure "$@" 2>>"$LOGS/crane.log"; }
    lw=$WORK/layers
    rm -rf "$lw"
    mkdir -p "$lw"
    : >"$CACHE/images.txt"
    : >"$LOGS/crane.log"
    log "pushing the image base"
    crane append -f "$base_tar" -t "$reg/kubeadm-pulumi/base:bookworm" >/dev/null
    crane mutate "$reg/kubeadm-pulumi/base:bookworm" --set-platform linux/amd64 \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
    # image REPO:TAG BASE(base|scratch) ENTRYPOINT FILE:DEST...
    image() {
        local ref=$1 base=$2 entry=$3 d
        shift 3
        d=$lw/${ref//[\/:]/_}
        mkdir -p "$d/root"
        local spec
        for spec in "$@"; do
            install -D -m 0755 "${spec%%:*}" "$d/root/${spec#*:}"
        done
        tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$d/root" -cf "$d/layer.tar" .
        if [[ $base == base ]]; then
            crane append -b "$reg/kubeadm-pulumi/base:bookworm" -f "$d/layer.tar" -t "$reg/$ref" >/dev/null
        else
            crane append -f "$d/layer.tar" -t "$reg/$ref" >/dev/null
        fi
        crane mutate "$reg/$ref" --set-platform linux/amd64 --entrypoint "$entry" \
            --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
        printf '%s\n' "$ref" >>"$CACHE/images.txt"
        log "pushed $ref"
    }
    # kubeadm's names under an imageRepository (`kubeadm config images list`).
    k=kubeadm-pulumi/k8s
    for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
        image "$k/$c:v$K8S_VERSION" base "/usr/local/bin/$c" "$ENGINE_BIN/$c:usr/local/bin/$c"
    done
    image "$k/etcd:$ETCD_IMAGE_TAG" base /usr/local/bin/etcd "$ENGINE_BIN/etcd:usr/local/bin/etcd"
    # With a custom imageRepository kubeadm wants CoreDNS at <repository>/coredns:<tag>
    # (registry.k8s.io/coredns/coredns only for the default repository).
    image "$k/coredns:v$COREDNS_VERSION" base /coredns "$BIN/coredns/coredns:coredns"
    image "$k/pause:$PAUSE_VERSION" scratch /pause "$BIN/pause/pause:pause"
    # The flannel chart's images (chart/kube-flannel/values.yaml): flanneld at
    # /opt/bin/flanneld; the CNI plugin image's init container runs `cp -f /flannel ...`.
    image "kubeadm-pulumi/flannel-io/flannel:v$FLANNEL_VERSION" base /opt/bin/flanneld "$BIN/flanneld/flannel:opt/bin/flanneld"
    image "kubeadm-pulumi/flannel-io/flannel-cni-plugin:v$FLANNEL_CNI_FROM_PLUGINS-containernetworking-plugins" base /flannel \
        "$BIN/flannel-cni/flannel:flannel"
    # The add-ons that can be built here, at the program's image paths (ADDON_IMAGES).
    image "kubeadm-pulumi/metrics-server/metrics-server:v$METRICS_SERVER_VERSION" base /metrics-server "$BIN/metrics-server/metrics-server:metrics-server"
    image "kubeadm-pulumi/e2e-test-images/agnhost:$AGNHOST_VERSION" base /agnhost "$BIN/agnhost/agnhost:agnhost" \
        "$BIN/busybox/busybox:usr/local/bin/wget" "$BIN/busybox/busybox:usr/local/bin/nslookup"
    kill "$regpid" 2>/dev/null || true
    wait "$regpid" 2>/dev/null || true
    trap - EXIT
    printf '%s\n' "$images_stamp" >"$STAMPS/images.stamp"
    SUMMARY+=("images             built   $(wc -l <"$CACHE/images.txt") images, registry $(du -sh "$CACHE/registry/data" | cut -f1), $(($(date +%s) - s)) s")
fi

# Versions for the test (sourced as shell, read by cluster.test.ts).
cat >"$CACHE/versions.env" <<EOF
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
COREDNS_VERSION=$COREDNS_VERSION
PAUSE_VERSION=$PAUSE_VERSION
CONTAINERD_VERSION=$CONTAINERD_VERSION
RUNC_VERSION=$RUNC_VERSION
CNI_PLUGINS_VERSION=$CNI_PLUGINS_VERSION
FLANNEL_VERSION=$FLANNEL_VERSION
FLANNEL_CNI_IMAGE_TAG=v$FLANNEL_CNI_FROM_PLUGINS-containernetworking-plugins
HELM_VERSION=$HELM_VERSION
METRICS_SERVER_VERSION=$METRICS_SERVER_VERSION
AGNHOST_VERSION=$AGNHOST_VERSION
IMAGE_PREFIX=kubeadm-pulumi
EOF

echo "== tests/cluster/build.sh: $(elapsed) s, go $GOVER" >&2
printf '  %s\n' "${SUMMARY[@]}" >&2
echo "cache: $(du -sh "$CACHE" | cut -f1) in $CACHE" >&2
printf '%s\n' "$CACHE"
