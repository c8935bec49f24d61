# shellcheck shell=bash
# prepare-rhel: install and configure containerd and kubelet/kubeadm/kubectl
# on RHEL, Rocky, AlmaLinux and CentOS Stream 9/10 (dnf). Idempotent. Shared
# steps: prepare-common.sh.
# Vars: KUBERNETES_VERSION, KUBERNETES_MINOR, KUBERNETES_REPO_BASE,
# DOCKER_REPO_BASE, CONTAINERD_VERSION, CONTAINERD_CONFIG, CRICTL_CONFIG,
# PAUSE_IMAGE, IMAGE_REPOSITORY, IS_CONTROL_PLANE.

# shellcheck disable=SC2034 # read by prepare-common.sh (prepare.sh sources both)
readonly KP_FAMILY=rhel
readonly K8S_REPO=/etc/yum.repos.d/kubernetes.repo
readonly DOCKER_REPO=/etc/yum.repos.d/docker-ce.repo
# --refresh on the next dnf call after a repository file changed.
DNF_REFRESH=()

dnf_run() {
    timeout 1800 dnf -y -q --setopt=install_weak_deps=False "${DNF_REFRESH[@]}" "$@" >&2 ||
        die "dnf $* failed (see the output above)"
    DNF_REFRESH=()
}

# family_proxy: dnf has one proxy= for every repository and no no-proxy
# list: the HTTPS proxy (most repositories are https), else the HTTP one.
# (adds to prepare_proxy's `changes`)
family_proxy() {
    local url=${PROXY_HTTPS:-$PROXY_HTTP} current wanted mode=0644
    current=$(
        cat -- "$KP_DNF_CONF" 2>/dev/null || true
        printf x
    )
    current=${current%x}
    wanted=$(
        kp_dnf_conf_with_proxy "$url" <<<"${current%$'\n'}"
        printf x
    )
    wanted=${wanted%x}
    [[ -n $current ]] || wanted=${wanted#$'\n'}
    [[ ! -f $KP_DNF_CONF ]] || mode=$(stat -c %a -- "$KP_DNF_CONF")
    [[ $wanted != "$current" ]] || return 0
    write_file_if_changed "$KP_DNF_CONF" "$mode" "$wanted"
    if [[ -n $url ]]; then
        changes+=("set proxy=$url in $KP_DNF_CONF")
        if grep -E '^[[:space:]]*proxy[[:space:]]*=' <<<"$wanted" | grep -vqxF "proxy=$url"; then
            warn "$KP_DNF_CONF has another proxy= setting besides the stack's; dnf uses the last one in [main]"
        fi
    else
        changes+=("removed the proxy from $KP_DNF_CONF (no proxy configured)")
    fi
}

# rpm_installed PKG: print VERSION-RELEASE of the installed PKG, or nothing.
rpm_installed() {
    # `rpm -q` prints "package X is not installed" on stdout, so ask first.
    if rpm -q --quiet "$1" 2>/dev/null; then
        rpm -q --qf '%{VERSION}-%{RELEASE}' "$1" 2>/dev/null || true
    fi
}

# rpm_resolve PKG UPSTREAM WHERE [DNF ARGS...]: set RESOLVED to the newest
# VERSION-RELEASE of PKG whose version is UPSTREAM; die when there is none.
RESOLVED=
rpm_resolve() {
    local pkg=$1 upstream=$2 where=$3 listing
    shift 3
    listing=$(timeout 600 dnf -q "${DNF_REFRESH[@]}" "$@" list --showduplicates "$pkg" 2>/dev/null || true)
    DNF_REFRESH=()
    RESOLVED=$(awk -v want="$upstream-" '
        { for (i = 2; i <= NF; i++) { v = $i; sub(/^[0-9]+:/, "", v); if (index(v, want) == 1) found = v } }
        END { if (found != "") print found }' <<<"$listing")
    if [[ -z $RESOLVED ]]; then
        die "$pkg $upstream is not available from $where; versions offered: $(awk 'NF >= 2 && $2 ~ /^[0-9]/ { printf "%s ", $2 }' <<<"$listing" | tail -c 400)"
    fi
}

family_prerequisites() {
    local -A provider=([curl]=curl [conntrack]=conntrack-tools [socat]=socat [ethtool]=ethtool
        [iptables]=iptables-nft [ip]=iproute [tc]=iproute-tc [mount]=util-linux [nsenter]=util-linux [modprobe]=kmod)
    local -A missing=()
    local cmd pkgs
    for cmd in "${!provider[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing[${provider[$cmd]}]=1
    done
    rpm -q ca-certificates >/dev/null 2>&1 || missing[ca-certificates]=1
    if ((${#missing[@]} == 0)); then
        step_result prerequisites
        return 0
    fi
    mapfile -t pkgs < <(printf '%s\n' "${!missing[@]}" | sort)
    dnf_run install "${pkgs[@]}"
    step_result prerequisites "installed ${pkgs[*]}"
}

# local_repository: the stack's packages.localRepository.rpm replaces Docker's
# and pkgs.k8s.io's repositories. It keeps the repository id `kubernetes` and
# its exclude= line, so the install below (--disableexcludes=kubernetes) is the same.
local_repository() {
    local changes=() gpg=('gpgcheck=0')
    [[ -z $LOCAL_REPO_KEY_URL ]] || gpg=('gpgcheck=1' "gpgkey=$LOCAL_REPO_KEY_URL")
    write_file_if_changed "$K8S_REPO" 0644 "$(
        printf '%s\n' '[kubernetes]' 'name=Kubernetes and containerd (packages.localRepository)' \
            "baseurl=$LOCAL_RPM_BASEURL" 'enabled=1' "${gpg[@]}" \
            'exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni'
    )"$'\n'
    [[ $KP_CHANGED == false ]] || changes+=("wrote $K8S_REPO for $LOCAL_RPM_BASEURL")
    if [[ -e $DOCKER_REPO ]]; then
        rm -f -- "$DOCKER_REPO"
        changes+=("removed $DOCKER_REPO (packages.localRepository replaces it)")
    fi
    if ((${#changes[@]} > 0)) || [[ $OFFLINE_REPO_CHANGED == true ]]; then
        DNF_REFRESH=(--refresh)
    fi
    step_result repositories "${changes[@]}"
}

family_repositories() {
    if [[ -n $LOCAL_RPM_BASEURL ]]; then
        local_repository
        return 0
    fi
    local changes=() id major others
    id=$(os_release_field ID)
    major=$(os_release_field VERSION_ID)
    major=${major%%.*}
    case $id in
    rhel | rocky | almalinux | centos) ;;
    *) die "prepare-rhel runs on RHEL, Rocky, AlmaLinux or CentOS Stream, this is '$id'" ;;
    esac

    # Docker's repository (CentOS path, which serves all RHEL rebuilds), for containerd.io.
    others=$(grep -lsF -- "$DOCKER_REPO_BASE/" /etc/yum.repos.d/*.repo | grep -vxF "$DOCKER_REPO" || true)
    if [[ -n $others ]]; then
        log "using the Docker repository already configured in: $(tr '\n' ' ' <<<"$others")"
    else
        # shellcheck disable=SC2016 # $basearch is for dnf, not the shell
        write_file_if_changed "$DOCKER_REPO" 0644 "$(
            printf '%s\n' '[docker-ce-stable]' \
                'name=Docker CE Stable - $basearch' \
                "baseurl=$DOCKER_REPO_BASE/centos/$major/\$basearch/stable" \
                'enabled=1' 'gpgcheck=1' \
                "gpgkey=$DOCKER_REPO_BASE/centos/gpg"
        )"$'\n'
        [[ $KP_CHANGED == false ]] || changes+=("wrote $DOCKER_REPO")
    fi

    # pkgs.k8s.io: one repository per minor; a file for another minor is replaced.
    # exclude= holds the packages: only --disableexcludes=kubernetes installs them.
    write_file_if_changed "$K8S_REPO" 0644 "$(
        printf '%s\n' '[kubernetes]' 'name=Kubernetes' \
            "baseurl=$KUBERNETES_REPO_BASE/v$KUBERNETES_MINOR/rpm/" \
            'enabled=1' 'gpgcheck=1' \
            "gpgkey=$KUBERNETES_REPO_BASE/v$KUBERNETES_MINOR/rpm/repodata/repomd.xml.key" \
            'exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni'
    )"$'\n'
    [[ $KP_CHANGED == false ]] || changes+=("wrote $K8S_REPO for v$KUBERNETES_MINOR")
    others=$(grep -lsF -- "pkgs.k8s.io" /etc/yum.repos.d/*.repo | grep -vxF "$K8S_REPO" || true)
    [[ -z $others ]] || warn "other dnf repositories also use pkgs.k8s.io and may offer another minor: $(tr '\n' ' ' <<<"$others")"

    if ((${#changes[@]} > 0)); then
        DNF_REFRESH=(--refresh)
    fi
    step_result repositories "${changes[@]}"
}

# (Overridable for the unit tests only.)
KP_SELINUX_CONFIG=${KP_SELINUX_CONFIG:-/etc/selinux/config}

# family_security: SELinux permissive, now (setenforce 0) and at boot
# (SELINUX=permissive in /etc/selinux/config), as kubeadm's install guide
# does for the RHEL family: the kubelet, static pods and CNI plugins write
# host paths (/var/lib/etcd, /opt/cni/bin, /var/log/pods) that the targeted
# policy labels for other domains. A disabled SELinux stays disabled.
family_security() {
    local changes=() config
    if command -v getenforce >/dev/null 2>&1 && [[ $(timeout 20 getenforce 2>/dev/null || true) == Enforcing ]]; then
        timeout 20 setenforce 0 || die "setenforce 0 failed: set SELinux permissive by hand (setenforce 0) and re-run pulumi up"
        changes+=("setenforce 0 (was Enforcing)")
    fi
    if [[ -f $KP_SELINUX_CONFIG ]] && grep -Eq "^[[:space:]]*SELINUX=[\"']?enforcing" "$KP_SELINUX_CONFIG"; then
        config=$(
            sed -E "s/^([[:space:]]*)SELINUX=[\"']?enforcing[\"']?/\\1SELINUX=permissive/" "$KP_SELINUX_CONFIG"
            printf x
        )
        write_file_if_changed "$KP_SELINUX_CONFIG" "$(stat -c %a "$KP_SELINUX_CONFIG")" "${config%x}"
        # (the file is replaced by a rename: give it back its SELinux label, as sed -i would keep it)
        if command -v restorecon >/dev/null 2>&1; then timeout 30 restorecon -- "$KP_SELINUX_CONFIG" || true; fi
        changes+=("SELINUX=permissive in $KP_SELINUX_CONFIG")
    fi
    step_result selinux "${changes[@]}"
}

family_packages() {
    local changes=() installs=() pkg want have
    local -A wanted=()
    local docker_source=$DOCKER_REPO_BASE k8s_source=$KUBERNETES_REPO_BASE/v$KUBERNETES_MINOR
    if [[ -n $LOCAL_RPM_BASEURL ]]; then
        docker_source=$LOCAL_RPM_BASEURL
        k8s_source=$LOCAL_RPM_BASEURL
    fi
    rpm_resolve containerd.io "$CONTAINERD_VERSION" "$docker_source" --disableexcludes=kubernetes
    wanted[containerd.io]=$RESOLVED
    for pkg in kubelet kubeadm kubectl; do
        rpm_resolve "$pkg" "$KUBERNETES_VERSION" "$k8s_source" --disableexcludes=kubernetes
        wanted[$pkg]=$RESOLVED
    done
    for pkg in containerd.io kubelet kubeadm kubectl; do
        want=${wanted[$pkg]}
        have=$(rpm_installed "$pkg")
        if [[ $have != "$want" ]]; then
            installs+=("$pkg-$want")
            changes+=("$pkg ${have:-(none)} -> $want")
            # shellcheck disable=SC2034 # read by prepare_containerd (prepare-common.sh)
            [[ $pkg != containerd.io ]] || CONTAINERD_REINSTALLED=true
        fi
    done
    if ((${#installs[@]} > 0)); then
        dnf_run --disableexcludes=kubernetes install "${installs[@]}"
        # `dnf install` does not downgrade an installed package: do that explicitly.
        local downgrades=()
        for pkg in containerd.io kubelet kubeadm kubectl; do
            [[ $(rpm_installed "$pkg") == "${wanted[$pkg]}" ]] || downgrades+=("$pkg-${wanted[$pkg]}")
        done
        if ((${#downgrades[@]} > 0)); then
            dnf_run --disableexcludes=kubernetes downgrade "${downgrades[@]}"
        fi
        for pkg in containerd.io kubelet kubeadm kubectl; do
            [[ $(rpm_installed "$pkg") == "${wanted[$pkg]}" ]] ||
                die "$pkg is at '$(rpm_installed "$pkg")' after installing ${wanted[$pkg]}"
        done
    fi
    step_result packages "${changes[@]}"
}
