# shellcheck shell=bash
# prepare-debian: install and configure containerd and kubelet/kubeadm/kubectl
# on Debian and Ubuntu (apt). Idempotent. Shared steps: prepare-common.sh.
# Vars: KUBERNETES_VERSION, KUBERNETES_MINOR, KUBERNETES_REPO_BASE,
# DOCKER_REPO_BASE, CONTAINERD_VERSION, CONTAINERD_CONFIG, CRICTL_CONFIG,
# PAUSE_IMAGE, IMAGE_REPOSITORY, IS_CONTROL_PLANE.

# apt never asks: no debconf question (DEBIAN_FRONTEND), and no needrestart
# prompt on Ubuntu (its apt hook asks which services to restart after a
# library upgrade; NEEDRESTART_SUSPEND skips the hook, NEEDRESTART_MODE=l only
# lists should it run anyway). Not mode `a`: that restarts the host's other
# services (sshd among them) in the middle of pulumi up; prepare restarts
# what it changes itself (containerd).
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l NEEDRESTART_SUSPEND=1
# shellcheck disable=SC2034 # read by prepare-common.sh (prepare.sh sources both)
readonly KP_FAMILY=debian
readonly K8S_KEYRING=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
readonly K8S_LIST=/etc/apt/sources.list.d/kubernetes.list
readonly DOCKER_KEY=/etc/apt/keyrings/docker.asc
readonly DOCKER_LIST=/etc/apt/sources.list.d/docker.list
APT_UPDATED=false

apt_update() {
    log "apt-get update"
    timeout 600 apt-get -q -o DPkg::Lock::Timeout=600 update >&2 || die "apt-get update failed (see the output above)"
    APT_UPDATED=true
}

apt_install() {
    timeout 1800 apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold \
        --no-install-recommends install "$@" >&2 || die "apt-get install $* failed (see the output above)"
}

# deb_installed PKG: print the installed version of PKG, or nothing.
deb_installed() {
    local out
    out=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null || true)
    # Status-Abbrev: desired state (i, or h once held), then the current state (i = installed).
    [[ ${out:1:1} != i ]] || printf '%s' "${out##* }"
}

# deb_candidate PKG UPSTREAM: the newest full revision of PKG whose upstream
# version is UPSTREAM (1.36.4 -> 1.36.4-1.1), or nothing.
deb_candidate() {
    timeout 120 apt-cache madison "$1" 2>/dev/null |
        awk -F'|' -v want="$2-" '{ gsub(/[[:space:]]/, "", $2); if (index($2, want) == 1) { print $2; exit } }' || true
}

# deb_resolve PKG UPSTREAM WHERE: like deb_candidate, refreshing the index once,
# dying when absent; sets RESOLVED (a global: apt_update must not run in a subshell).
RESOLVED=
deb_resolve() {
    local v
    v=$(deb_candidate "$1" "$2")
    if [[ -z $v && $APT_UPDATED == false ]]; then
        apt_update
        v=$(deb_candidate "$1" "$2")
    fi
    if [[ -z $v ]]; then
        die "$1 $2 is not available from $3; versions offered: $(timeout 120 apt-cache madison "$1" 2>/dev/null | awk -F'|' 'NR <= 8 { gsub(/[[:space:]]/, "", $2); printf "%s ", $2 }')"
    fi
    RESOLVED=$v
}

family_prerequisites() {
    local -A provider=([curl]=curl [gpg]=gpg [conntrack]=conntrack [socat]=socat [ethtool]=ethtool
        [iptables]=iptables [ip]=iproute2 [tc]=iproute2 [mount]=mount [nsenter]=util-linux [modprobe]=kmod
        [update-ca-certificates]=ca-certificates)
    local -A missing=()
    local cmd
    for cmd in "${!provider[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing[${provider[$cmd]}]=1
    done
    [[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing[ca-certificates]=1
    if ((${#missing[@]} == 0)); then
        step_result prerequisites
        return 0
    fi
    local pkgs
    mapfile -t pkgs < <(printf '%s\n' "${!missing[@]}" | sort)
    apt_update
    apt_install "${pkgs[@]}"
    step_result prerequisites "installed ${pkgs[*]}"
}

# family_security: AppArmor needs nothing from this program. containerd
# loads its default profile (cri-containerd.apparmor.d) for every container
# itself when the kernel has AppArmor on and /sbin/apparmor_parser exists,
# and runs containers unconfined without the parser (containerd
# pkg/apparmor/apparmor_linux.go, hostSupports). That last case is reported.
family_security() {
    if [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true) == Y* && ! -x /sbin/apparmor_parser ]]; then
        warn "AppArmor is on in the kernel but /sbin/apparmor_parser is missing, so containerd runs pods without its default AppArmor profile; install the apparmor package to confine them"
    fi
    step_result apparmor
}

# family_proxy: apt's proxy configuration (APT_PROXY_CONF), or none.
# (adds to prepare_proxy's `changes`)
family_proxy() {
    if [[ -n $APT_PROXY_CONF ]]; then
        write_file_if_changed "$KP_APT_PROXY_FILE" 0644 "$APT_PROXY_CONF"
        [[ $KP_CHANGED == false ]] || changes+=("wrote $KP_APT_PROXY_FILE")
    elif [[ -e $KP_APT_PROXY_FILE ]]; then
        rm -f -- "$KP_APT_PROXY_FILE"
        changes+=("removed $KP_APT_PROXY_FILE (no proxy configured)")
    fi
}

readonly LOCAL_LIST=/etc/apt/sources.list.d/kubeadm-pulumi-local.list
readonly LOCAL_KEYRING=/etc/apt/keyrings/kubeadm-pulumi-local.gpg

# local_repository: the stack's packages.localRepository.apt replaces Docker's
# and pkgs.k8s.io's repositories (air-gapped sites, mirrors).
local_repository() {
    local changes=() options=trusted=yes f
    install -d -m 0755 /etc/apt/keyrings
    if [[ -n $LOCAL_REPO_KEY_URL ]]; then
        if [[ ! -s $LOCAL_KEYRING ]]; then
            fetch "$LOCAL_REPO_KEY_URL" "$KP_TMPDIR/local.key"
            timeout 60 gpg --batch --yes --dearmor -o "$KP_TMPDIR/local.gpg" "$KP_TMPDIR/local.key" ||
                die "cannot read the signing key from $LOCAL_REPO_KEY_URL"
            install_file_if_changed "$KP_TMPDIR/local.gpg" "$LOCAL_KEYRING" 0644
            changes+=("wrote $LOCAL_KEYRING")
        fi
        options="signed-by=$LOCAL_KEYRING"
    fi
    write_file_if_changed "$LOCAL_LIST" 0644 "deb [$options] $LOCAL_APT_SOURCE"$'\n'
    [[ $KP_CHANGED == false ]] || changes+=("wrote $LOCAL_LIST")
    for f in "$DOCKER_LIST" "$K8S_LIST"; do
        if [[ -e $f ]]; then
            rm -f -- "$f"
            changes+=("removed $f (packages.localRepository replaces it)")
        fi
    done
    if ((${#changes[@]} > 0)) || [[ $OFFLINE_REPO_CHANGED == true ]]; then
        apt_update
    fi
    step_result repositories "${changes[@]}"
}

family_repositories() {
    if [[ -n $LOCAL_APT_SOURCE ]]; then
        local_repository
        return 0
    fi
    local changes=() id codename arch others line
    id=$(os_release_field ID)
    codename=$(os_release_field VERSION_CODENAME)
    [[ $id == debian || $id == ubuntu ]] || die "prepare-debian runs on Debian or Ubuntu, this is '$id'"
    [[ -n $codename ]] || die "VERSION_CODENAME is missing from /etc/os-release"
    arch=$(dpkg --print-architecture)
    install -d -m 0755 /etc/apt/keyrings

    # Docker's repository, for containerd.io (unless the host already has it configured).
    others=$(grep -rlsF -- "$DOCKER_REPO_BASE/$id" /etc/apt/sources.list /etc/apt/sources.list.d | grep -vxF "$DOCKER_LIST" || true)
    if [[ -n $others ]]; then
        log "using the Docker repository already configured in: $(tr '\n' ' ' <<<"$others")"
    else
        if [[ ! -s $DOCKER_KEY ]]; then
            fetch "$DOCKER_REPO_BASE/$id/gpg" "$KP_TMPDIR/docker.asc"
            install_file_if_changed "$KP_TMPDIR/docker.asc" "$DOCKER_KEY" 0644
            changes+=("added $DOCKER_KEY")
        fi
        write_file_if_changed "$DOCKER_LIST" 0644 "deb [arch=$arch signed-by=$DOCKER_KEY] $DOCKER_REPO_BASE/$id $codename stable"$'\n'
        [[ $KP_CHANGED == false ]] || changes+=("wrote $DOCKER_LIST")
    fi

    # pkgs.k8s.io: one repository per minor; a list for another minor is replaced.
    line="deb [signed-by=$K8S_KEYRING] $KUBERNETES_REPO_BASE/v$KUBERNETES_MINOR/deb/ /"
    if [[ ! -s $K8S_KEYRING || $(cat "$K8S_LIST" 2>/dev/null || true) != "$line" ]]; then
        fetch "$KUBERNETES_REPO_BASE/v$KUBERNETES_MINOR/deb/Release.key" "$KP_TMPDIR/k8s.key"
        timeout 60 gpg --batch --yes --dearmor -o "$KP_TMPDIR/k8s.gpg" "$KP_TMPDIR/k8s.key" ||
            die "cannot read the pkgs.k8s.io signing key"
        install_file_if_changed "$KP_TMPDIR/k8s.gpg" "$K8S_KEYRING" 0644
        [[ $KP_CHANGED == false ]] || changes+=("wrote $K8S_KEYRING")
    fi
    write_file_if_changed "$K8S_LIST" 0644 "$line"$'\n'
    [[ $KP_CHANGED == false ]] || changes+=("wrote $K8S_LIST for v$KUBERNETES_MINOR")
    others=$(grep -rlsF -- "pkgs.k8s.io" /etc/apt/sources.list /etc/apt/sources.list.d | grep -vxF "$K8S_LIST" || true)
    [[ -z $others ]] || warn "other apt sources also use pkgs.k8s.io and may offer another minor: $(tr '\n' ' ' <<<"$others")"

    if ((${#changes[@]} > 0)); then
        apt_update
    fi
    step_result repositories "${changes[@]}"
}

family_packages() {
    local changes=() installs=() held pkg want have
    local -A wanted=()
    local docker_source=$DOCKER_REPO_BASE k8s_source=$KUBERNETES_REPO_BASE/v$KUBERNETES_MINOR
    if [[ -n $LOCAL_APT_SOURCE ]]; then
        docker_source=$LOCAL_APT_SOURCE
        k8s_source=$LOCAL_APT_SOURCE
    fi
    deb_resolve containerd.io "$CONTAINERD_VERSION" "$docker_source"
    wanted[containerd.io]=$RESOLVED
    for pkg in kubelet kubeadm kubectl; do
        deb_resolve "$pkg" "$KUBERNETES_VERSION" "$k8s_source"
        wanted[$pkg]=$RESOLVED
    done
    for pkg in containerd.io kubelet kubeadm kubectl; do
        want=${wanted[$pkg]}
        have=$(deb_installed "$pkg")
        if [[ $have != "$want" ]]; then
            installs+=("$pkg=$want")
            changes+=("$pkg ${have:-(none)} -> $want")
            # shellcheck disable=SC2034 # read by prepare_containerd (prepare-common.sh)
            [[ $pkg != containerd.io ]] || CONTAINERD_REINSTALLED=true
        fi
    done
    if ((${#installs[@]} > 0)); then
        apt_install --allow-downgrades --allow-change-held-packages "${installs[@]}"
    fi
    held=$(apt-mark showhold 2>/dev/null || true)
    for pkg in containerd.io kubelet kubeadm kubectl; do
        if ! grep -qxF -- "$pkg" <<<"$held"; then
            timeout 60 apt-mark hold "$pkg" >/dev/null || die "apt-mark hold $pkg failed"
            changes+=("held $pkg")
        fi
    done
    step_result packages "${changes[@]}"
}
