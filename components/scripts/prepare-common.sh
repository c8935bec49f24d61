# shellcheck shell=bash
# Steps shared by prepare-debian.sh and prepare-rhel.sh (renderScript inlines
# this file between lib.sh and the family's body). Every step is guarded so a
# second run changes nothing and reports "<step>: unchanged".
# Vars: KUBERNETES_VERSION, KUBERNETES_MINOR, CONTAINERD_CONFIG, CRICTL_CONFIG,
# FIREWALL_PORTS (`<port>[-<port>]/<proto>` the node serves), FIREWALL_SOURCES
# (the pod and service CIDRs),
# REGISTRY_DIRS, REGISTRY_HOSTS_TOML, REGISTRY_CAS (one entry per
# containerd.registries item), PAUSE_IMAGE, IMAGE_REPOSITORY, IS_CONTROL_PLANE,
# PROXY_HTTP, PROXY_HTTPS, NO_PROXY_LIST, APT_PROXY_CONF, CONTAINERD_PROXY_DROPIN
# (all "" without a proxy), SSH_USER, OFFLINE_REPO_DIR, OFFLINE_PACKAGES
# ("<sha256> <path under SSH_USER's home>" or ""), OFFLINE_IMAGES (the same, per image archive).
# containerd is checked and images are looked up and pulled with `ctr` (it
# ships with containerd.io); crictl is not relied on (kubeadm's packages no
# longer depend on cri-tools since 1.32).

readonly KP_CRI_SOCKET=unix:///run/containerd/containerd.sock
readonly KP_CERTS_D=/etc/containerd/certs.d
# The marker in every certs.d directory this step manages.
readonly KP_CERTS_MARK=.managed-by-kubeadm-pulumi
# Set by the family's package step when containerd.io was (re)installed.
CONTAINERD_REINSTALLED=false
# Set by prepare_proxy when that drop-in was written or removed.
CONTAINERD_PROXY_CHANGED=false
# Set by prepare_offline_packages when it unpacked a new repository (the
# family's local_repository then refreshes the package index).
OFFLINE_REPO_CHANGED=false

# step_result STEP CHANGES...: one summary line on stdout.
step_result() {
    local name=$1
    shift
    if (($# == 0)); then
        say "$name: unchanged"
    else
        local IFS=';'
        say "$name: changed ($*)"
    fi
}

# fetch URL FILE: download URL to FILE (bounded, with retries).
fetch() {
    timeout 180 curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 20 -o "$2" "$1" ||
        die "cannot download $1 (check the host's outbound HTTPS access and proxy settings)"
}

prepare_check_inputs() {
    if [[ -n $APT_PROXY_CONF$CONTAINERD_PROXY_DROPIN$NO_PROXY_LIST && -z $PROXY_HTTP$PROXY_HTTPS ]]; then
        die "proxy settings without a proxy URL (PROXY_HTTP and PROXY_HTTPS are empty)"
    fi
    [[ $KUBERNETES_VERSION == "$KUBERNETES_MINOR".* ]] ||
        die "KUBERNETES_VERSION $KUBERNETES_VERSION is not a patch of KUBERNETES_MINOR $KUBERNETES_MINOR"
    # A local repository must serve this host's package format (KP_FAMILY is set by the family script).
    if [[ $KP_FAMILY == debian && -z $LOCAL_APT_SOURCE && -n $LOCAL_RPM_BASEURL ]]; then
        die "packages.localRepository sets only rpm, but this host uses apt: add packages.localRepository.apt to the stack config"
    fi
    if [[ $KP_FAMILY == rhel && -z $LOCAL_RPM_BASEURL && -n $LOCAL_APT_SOURCE ]]; then
        die "packages.localRepository sets only apt, but this host uses dnf: add packages.localRepository.rpm to the stack config"
    fi
}

# prepare_proxy: the stack's proxy for this run's own downloads (curl, ctr,
# the package manager: exported), for the package manager (family_proxy)
# and for containerd (its drop-in; a change restarts containerd in
# prepare_containerd). With no proxy configured, the files this step wrote
# earlier are removed.
prepare_proxy() {
    local changes=()
    if [[ -n $PROXY_HTTP ]]; then export http_proxy=$PROXY_HTTP HTTP_PROXY=$PROXY_HTTP; fi
    if [[ -n $PROXY_HTTPS ]]; then export https_proxy=$PROXY_HTTPS HTTPS_PROXY=$PROXY_HTTPS; fi
    if [[ -n $PROXY_HTTP || -n $PROXY_HTTPS ]]; then export no_proxy=$NO_PROXY_LIST NO_PROXY=$NO_PROXY_LIST; fi
    family_proxy
    if [[ -n $CONTAINERD_PROXY_DROPIN ]]; then
        if [[ -f $KP_CONTAINERD_PROXY_DROPIN ]] && ! grep -qF -- "$KP_PROXY_MARK" "$KP_CONTAINERD_PROXY_DROPIN"; then
            warn "replacing $KP_CONTAINERD_PROXY_DROPIN, which kubeadm-pulumi did not write, with the stack's proxy settings"
        fi
        install -d -m 0755 "${KP_CONTAINERD_PROXY_DROPIN%/*}"
        write_file_if_changed "$KP_CONTAINERD_PROXY_DROPIN" 0644 "$CONTAINERD_PROXY_DROPIN"
        if [[ $KP_CHANGED == true ]]; then
            CONTAINERD_PROXY_CHANGED=true
            changes+=("wrote $KP_CONTAINERD_PROXY_DROPIN")
        fi
    elif [[ -f $KP_CONTAINERD_PROXY_DROPIN ]] && grep -qF -- "$KP_PROXY_MARK" "$KP_CONTAINERD_PROXY_DROPIN"; then
        rm -f -- "$KP_CONTAINERD_PROXY_DROPIN"
        rmdir -- "${KP_CONTAINERD_PROXY_DROPIN%/*}" 2>/dev/null || true
        CONTAINERD_PROXY_CHANGED=true
        changes+=("removed $KP_CONTAINERD_PROXY_DROPIN (no proxy configured)")
    fi
    if [[ $CONTAINERD_PROXY_CHANGED == true ]]; then
        timeout 60 systemctl daemon-reload || die "systemctl daemon-reload failed after changing $KP_CONTAINERD_PROXY_DROPIN"
    fi
    step_result proxy "${changes[@]}"
}

# offline_staged REL: the absolute path of a file the host's offline copy
# steps put under SSH_USER's home (SFTP paths are relative to it).
offline_staged() {
    local home
    home=$(getent passwd "$SSH_USER" | cut -d: -f6) || true
    [[ -n $home ]] || die "cannot find the home directory of $SSH_USER, where the offline archives are copied"
    printf '%s/%s' "$home" "$1"
}

# offline_check_copy SHA256 FILE: FILE is there and is the archive the stack names.
offline_check_copy() {
    local fix="run pulumi up --replace on this host's offline copy steps (pulumi stack --show-urns | grep -- -offline-)"
    [[ -f $2 ]] || die "$2 is missing (the copy step put it there; prepare removes it once used): $fix"
    [[ $(sha256_of "$2") == "$1" ]] || die "$2 is not the archive in the stack config (SHA-256 differs: an interrupted copy?): $fix"
}

# prepare_offline_packages: unpack offline.packages into OFFLINE_REPO_DIR
# (the host's file: repository, see the family's local_repository), once per
# archive: its hash is recorded in OFFLINE_REPO_DIR/.sha256.
prepare_offline_packages() {
    local sha rel file tmp
    if [[ -z $OFFLINE_PACKAGES ]]; then
        step_result offline-packages
        return 0
    fi
    sha=${OFFLINE_PACKAGES%% *}
    rel=${OFFLINE_PACKAGES#* }
    file=$(offline_staged "$rel")
    if [[ -f $OFFLINE_REPO_DIR/.sha256 && $(cat "$OFFLINE_REPO_DIR/.sha256") == "$sha" ]]; then
        rm -f -- "$file"
        step_result offline-packages
        return 0
    fi
    offline_check_copy "$sha" "$file"
    install -d -m 0755 "${OFFLINE_REPO_DIR%/*}"
    tmp=$(mktemp -d "${OFFLINE_REPO_DIR%/*}/.unpack.XXXXXXXX")
    KP_CLEANUP+=("$tmp")
    timeout 900 tar -xf "$file" -C "$tmp" --no-same-owner --no-same-permissions >&2 || die "cannot unpack $file (is it a .tar or .tar.gz?)"
    # readable by apt's _apt sandbox user
    chmod -R u=rwX,go=rX "$tmp"
    case $KP_FAMILY in
    debian)
        [[ -f $tmp/Packages || -f $tmp/Packages.gz || -f $tmp/Packages.xz ]] ||
            die "offline.packages has no Packages index at its top, so apt cannot use it as a flat repository: build it with dpkg-scanpackages . > Packages, then tar -C <dir> -czf packages.tar.gz ."
        ;;
    rhel)
        [[ -f $tmp/repodata/repomd.xml ]] ||
            die "offline.packages has no repodata/repomd.xml, so dnf cannot use it: build it with createrepo_c <dir>, then tar -C <dir> -czf packages.tar.gz ."
        ;;
    esac
    printf '%s\n' "$sha" >"$tmp/.sha256"
    rm -rf -- "$OFFLINE_REPO_DIR"
    mv -- "$tmp" "$OFFLINE_REPO_DIR"
    rm -f -- "$file"
    # shellcheck disable=SC2034 # read by the family's local_repository (prepare.sh sources both)
    OFFLINE_REPO_CHANGED=true
    step_result offline-packages "unpacked ${rel##*/} to $OFFLINE_REPO_DIR"
}

# prepare_offline_images: import each offline.images archive into
# containerd's k8s.io namespace once (recorded under $KP_STATE_DIR/images/),
# so prepare_images finds the images and pulls nothing.
prepare_offline_images() {
    local line sha rel file marker changes=()
    for line in "${OFFLINE_IMAGES[@]}"; do
        sha=${line%% *}
        rel=${line#* }
        file=$(offline_staged "$rel")
        marker=$KP_STATE_DIR/images/$sha
        if [[ -f $marker ]]; then
            rm -f -- "$file"
            continue
        fi
        offline_check_copy "$sha" "$file"
        log "importing ${rel##*/} into containerd"
        timeout 1800 ctr -n k8s.io images import "$file" >&2 || die "ctr -n k8s.io images import ${rel##*/} failed (is it an OCI or docker image archive?)"
        (umask 077 && mkdir -p -- "$KP_STATE_DIR/images") || die "cannot create $KP_STATE_DIR/images"
        printf '%s\n' "${rel##*/}" >"$marker"
        rm -f -- "$file"
        changes+=("imported ${rel##*/}")
    done
    step_result offline-images "${changes[@]}"
}

prepare_swap() {
    local changes=() unit state
    if [[ $(awk 'NR > 1' /proc/swaps 2>/dev/null) ]]; then
        timeout 300 swapoff -a || die "swapoff -a failed; turn swap off by hand and re-run pulumi up"
        changes+=("swapoff -a")
    fi
    if [[ -f /etc/fstab ]] && awk '!/^[[:space:]]*#/ && $3 == "swap" { found = 1 } END { exit !found }' /etc/fstab; then
        local fstab
        fstab=$(
            awk '!/^[[:space:]]*#/ && $3 == "swap" { print "# " $0 "  # disabled by kubeadm-pulumi (kubelet needs swap off)"; next } { print }' /etc/fstab
            printf x
        )
        write_file_if_changed /etc/fstab "$(stat -c %a /etc/fstab)" "${fstab%x}"
        changes+=("commented swap out of /etc/fstab")
    fi
    while read -r unit _; do
        [[ $unit == *.swap ]] || continue
        state=$(timeout 20 systemctl is-enabled "$unit" 2>/dev/null || true)
        [[ $state != masked ]] || continue
        timeout 60 systemctl mask "$unit" >/dev/null 2>&1 || die "cannot mask swap unit $unit"
        changes+=("masked $unit")
    done < <(timeout 20 systemctl list-units --type=swap --all --no-legend --plain 2>/dev/null || true)
    step_result swap "${changes[@]}"
}

# module_available NAME: the kernel has what module NAME provides, loaded or
# built in (a built-in module has no /sys/module entry when it takes no
# parameters, and modprobe of it fails on kernels without a modules tree).
module_available() {
    [[ -d /sys/module/$1 ]] && return 0
    case $1 in
    overlay) grep -qw overlay /proc/filesystems ;;
    br_netfilter) [[ -d /proc/sys/net/bridge ]] ;;
    *) return 1 ;;
    esac
}

prepare_modules() {
    local changes=() m
    write_file_if_changed /etc/modules-load.d/kubeadm-pulumi.conf 0644 $'overlay\nbr_netfilter\n'
    [[ $KP_CHANGED == false ]] || changes+=("wrote /etc/modules-load.d/kubeadm-pulumi.conf")
    for m in overlay br_netfilter; do
        module_available "$m" && continue
        if timeout 60 modprobe "$m" && module_available "$m"; then
            changes+=("loaded $m")
        else
            die "the kernel lacks $m (modprobe $m failed and it is not built in); install the kernel's extra modules package (e.g. linux-modules-extra-\$(uname -r) on Ubuntu) or use a kernel with $m"
        fi
    done
    step_result modules "${changes[@]}"
}

prepare_sysctls() {
    local changes=() key file value
    local keys=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)
    write_file_if_changed /etc/sysctl.d/99-kubeadm-pulumi.conf 0644 "$(printf '%s = 1\n' "${keys[@]}")"$'\n'
    if [[ $KP_CHANGED == true ]]; then
        changes+=("wrote /etc/sysctl.d/99-kubeadm-pulumi.conf")
        timeout 60 sysctl --system >/dev/null 2>&1 || warn "sysctl --system reported errors; checking the values directly"
    fi
    for key in "${keys[@]}"; do
        file=/proc/sys/${key//.//}
        value=$(cat "$file" 2>/dev/null || true)
        [[ $value != 1 ]] || continue
        timeout 20 sysctl -q -w "$key=1" >/dev/null 2>&1 || true
        value=$(cat "$file" 2>/dev/null || true)
        [[ $value == 1 ]] || die "cannot set $key=1 (is /proc/sys read-only, or br_netfilter missing?)"
        changes+=("set $key=1")
    done
    step_result sysctls "${changes[@]}"
}

prepare_crictl() {
    write_file_if_changed /etc/crictl.yaml 0644 "$CRICTL_CONFIG"
    if [[ $KP_CHANGED == true ]]; then step_result crictl "wrote /etc/crictl.yaml"; else step_result crictl; fi
}

prepare_containerd() {
    local changes=() config_changed deadline
    install -d -m 0755 /etc/containerd
    write_file_if_changed /etc/containerd/config.toml 0644 "$CONTAINERD_CONFIG"
    config_changed=$KP_CHANGED
    [[ $config_changed == false ]] || changes+=("wrote /etc/containerd/config.toml")
    if ! timeout 20 systemctl is-enabled --quiet containerd; then
        timeout 60 systemctl enable containerd >/dev/null 2>&1 || die "systemctl enable containerd failed"
        changes+=("enabled containerd")
    fi
    if ! timeout 20 systemctl is-active --quiet containerd; then
        timeout 120 systemctl start containerd || die "containerd does not start; see journalctl -u containerd"
        changes+=("started containerd")
    elif [[ $config_changed == true || $CONTAINERD_REINSTALLED == true || $CONTAINERD_PROXY_CHANGED == true ]]; then
        timeout 120 systemctl restart containerd || die "containerd does not restart; see journalctl -u containerd"
        changes+=("restarted containerd")
    fi
    deadline=$((SECONDS + 90))
    until timeout 15 ctr plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" && $NF == "ok" { found = 1 } END { exit !found }'; do
        ((SECONDS < deadline)) || die "containerd's CRI plugin is not running (ctr plugins ls shows no ok io.containerd.grpc.v1 cri; is it disabled in /etc/containerd/config.toml? see journalctl -u containerd)"
        sleep 2
    done
    step_result containerd "${changes[@]}"
}

# prepare_registries: one /etc/containerd/certs.d/<registry>/ per
# containerd.registries item (hosts.toml, ca.crt); directories this step made
# for registries no longer configured are removed, others are left alone.
# containerd reads them at each pull: no restart.
prepare_registries() {
    local changes=() i dir d wanted=" "
    install -d -m 0755 "$KP_CERTS_D"
    for i in "${!REGISTRY_DIRS[@]}"; do
        dir=$KP_CERTS_D/${REGISTRY_DIRS[$i]}
        wanted+="${REGISTRY_DIRS[$i]} "
        install -d -m 0755 "$dir"
        write_file_if_changed "$dir/hosts.toml" 0644 "${REGISTRY_HOSTS_TOML[$i]}"
        [[ $KP_CHANGED == false ]] || changes+=("wrote $dir/hosts.toml")
        if [[ -n ${REGISTRY_CAS[$i]} ]]; then
            write_file_if_changed "$dir/ca.crt" 0644 "${REGISTRY_CAS[$i]}"
            [[ $KP_CHANGED == false ]] || changes+=("wrote $dir/ca.crt")
        elif [[ -e $dir/ca.crt ]]; then
            rm -f -- "$dir/ca.crt"
            changes+=("removed $dir/ca.crt")
        fi
        write_file_if_changed "$dir/$KP_CERTS_MARK" 0644 $'# this directory is written by kubeadm-pulumi (containerd.registries)\n'
    done
    for d in "$KP_CERTS_D"/*/; do
        d=${d%/}
        [[ -f $d/$KP_CERTS_MARK && $wanted != *" ${d##*/} "* ]] || continue
        rm -rf -- "$d"
        changes+=("removed $d (no longer in containerd.registries)")
    done
    step_result registries "${changes[@]}"
}

prepare_kubelet() {
    if timeout 20 systemctl is-enabled --quiet kubelet; then
        step_result kubelet
    else
        timeout 60 systemctl enable kubelet >/dev/null 2>&1 || die "systemctl enable kubelet failed"
        step_result kubelet "enabled kubelet (kubeadm starts it)"
    fi
}

prepare_images() {
    local list expected img have images=() absent=()
    local flags=(--kubernetes-version "v$KUBERNETES_VERSION" --image-repository "$IMAGE_REPOSITORY")
    list=$(timeout 120 kubeadm config images list "${flags[@]}" 2>/dev/null) ||
        die "kubeadm config images list ${flags[*]} failed"
    if ! grep -qxF -- "$PAUSE_IMAGE" <<<"$list"; then
        expected=$(grep -E '/pause:' <<<"$list" | head -n 1 || true)
        die "kubeadm $KUBERNETES_VERSION expects the pause image ${expected:-(none listed)} while the program pins $PAUSE_IMAGE; update PAUSE_TAG in components/versions.ts"
    fi
    if [[ $IS_CONTROL_PLANE == true ]]; then
        mapfile -t images <<<"$list"
    else
        mapfile -t images < <(grep -E '/kube-proxy:' <<<"$list" || true)
        images+=("$PAUSE_IMAGE")
    fi
    have=$(timeout 60 ctr -n k8s.io images ls -q 2>/dev/null) || die "ctr -n k8s.io images ls failed (is containerd running?)"
    for img in "${images[@]}"; do
        [[ -n $img ]] || continue
        grep -qxF -- "$img" <<<"$have" || absent+=("$img")
    done
    if ((${#absent[@]} == 0)); then
        step_result images
        return 0
    fi
    if [[ $IS_CONTROL_PLANE == true ]]; then
        log "pulling the control-plane images for Kubernetes $KUBERNETES_VERSION"
        timeout 1800 kubeadm config images pull "${flags[@]}" --cri-socket "$KP_CRI_SOCKET" >&2 ||
            die "kubeadm config images pull failed (can the host reach $IMAGE_REPOSITORY?)"
    else
        for img in "${absent[@]}"; do
            log "pulling $img"
            # (ctr reads the registry configuration only from --hosts-dir)
            timeout 900 ctr -n k8s.io images pull --hosts-dir "$KP_CERTS_D" "$img" >/dev/null ||
                die "ctr images pull $img failed (can the host reach $IMAGE_REPOSITORY? see containerd.registries for mirrors and CAs)"
        done
    fi
    step_result images "pulled ${absent[*]}"
}

# prepare_firewall: when firewalld runs (the RHEL family's default), open
# FIREWALL_PORTS in its default zone and put FIREWALL_SOURCES (the pod and
# service networks) in its trusted zone, in the running and the saved
# configuration, without a reload (which would drop other runtime-only rules).
# What this step opened is recorded (KP_FIREWALL_RECORD) so that reset closes
# exactly that; what was open already is never recorded, so never closed.
# ufw (Ubuntu) is not changed: when it is active, a warning lists what to allow.
prepare_firewall() {
    local changes=() item recorded=() want_items=() keep=() opened p
    for p in "${FIREWALL_PORTS[@]}"; do want_items+=("port $p"); done
    for p in "${FIREWALL_SOURCES[@]}"; do want_items+=("source $p"); done
    if ! kp_firewalld_running; then
        if command -v ufw >/dev/null 2>&1 && timeout 30 ufw status 2>/dev/null | grep -qx 'Status: active'; then
            warn "ufw is active and is not changed by this program: allow ${FIREWALL_PORTS[*]} (ufw allow <port>/<proto>)," \
                "routed traffic from ${FIREWALL_SOURCES[*]} (ufw default allow routed), and the nodes' traffic to each other"
        fi
        step_result firewall
        return 0
    fi
    [[ ! -f $KP_FIREWALL_RECORD ]] || mapfile -t recorded <"$KP_FIREWALL_RECORD"
    for item in "${want_items[@]}"; do
        opened=false
        if ! kp_firewalld_item query "$item" --permanent; then
            kp_firewalld_item add "$item" --permanent ||
                die "firewalld refused to add $item to its saved configuration (a source can be in one zone only: see firewall-cmd --get-active-zones)"
            opened=true
        fi
        if ! kp_firewalld_item query "$item"; then
            kp_firewalld_item add "$item" || die "firewalld refused to add $item"
            opened=true
        fi
        if [[ $opened == true ]]; then
            changes+=("opened $item")
            keep+=("$item")
        elif printf '%s\n' "${recorded[@]}" | grep -qxF -- "$item"; then
            keep+=("$item")
        fi
    done
    # Opened by an earlier run for a setting that is gone: close it.
    for item in "${recorded[@]}"; do
        [[ -n $item ]] || continue
        printf '%s\n' "${want_items[@]}" | grep -qxF -- "$item" && continue
        if kp_firewalld_item query "$item" --permanent; then kp_firewalld_item remove "$item" --permanent || true; fi
        if kp_firewalld_item query "$item"; then kp_firewalld_item remove "$item" || true; fi
        changes+=("closed $item")
    done
    (umask 077 && mkdir -p -- "$KP_STATE_DIR")
    if ((${#keep[@]} > 0)); then
        write_file_if_changed "$KP_FIREWALL_RECORD" 0600 "$(printf '%s\n' "${keep[@]}" | sort -u)"$'\n'
    elif [[ -f $KP_FIREWALL_RECORD ]]; then
        rm -f -- "$KP_FIREWALL_RECORD"
    fi
    step_result firewall "${changes[@]}"
}

# (Overridable for the unit tests only.)
KP_NM_CONF=${KP_NM_CONF:-/etc/NetworkManager/conf.d/90-kubeadm-pulumi-cni.conf}

# prepare_network_manager: where NetworkManager runs (the RHEL family's
# default, Ubuntu desktops), tell it to leave the CNIs' interfaces alone: it
# otherwise takes over the bridges, tunnels and veths the CNI makes and
# breaks pod networking (Calico's "Configure NetworkManager"; the same holds
# for flannel's and Cilium's devices). The file stays after teardown, like
# the sysctl and module files: it matches only CNI interface names.
prepare_network_manager() {
    local content
    if ! timeout 20 systemctl is-active --quiet NetworkManager 2>/dev/null; then
        step_result networkmanager
        return 0
    fi
    content=$(printf '%s\n' \
        '# Written by kubeadm-pulumi (prepare): NetworkManager leaves the pod network interfaces alone.' \
        '[keyfile]' \
        'unmanaged-devices=interface-name:cni0;interface-name:flannel*;interface-name:cali*;interface-name:tunl*;interface-name:vxlan.calico;interface-name:vxlan-v6.calico;interface-name:wireguard.cali;interface-name:wg-v6.cali;interface-name:cilium_*;interface-name:lxc*')$'\n'
    write_file_if_changed "$KP_NM_CONF" 0644 "$content"
    if [[ $KP_CHANGED == false ]]; then
        step_result networkmanager
        return 0
    fi
    timeout 60 systemctl reload NetworkManager || warn "systemctl reload NetworkManager failed: it reads $KP_NM_CONF at its next restart"
    step_result networkmanager "wrote $KP_NM_CONF (CNI interfaces unmanaged)"
}

# prepare_main: the whole prepare run; the family body defines family_proxy,
# family_prerequisites, family_security, family_repositories and family_packages.
prepare_main() {
    prepare_check_inputs
    log "preparing this $([[ $IS_CONTROL_PLANE == true ]] && echo control plane || echo worker) for Kubernetes $KUBERNETES_VERSION with containerd $CONTAINERD_VERSION"
    private_tmpdir
    wait_for_package_locks 600
    prepare_proxy
    prepare_offline_packages
    prepare_swap
    prepare_modules
    prepare_sysctls
    family_prerequisites
    family_security
    prepare_firewall
    prepare_network_manager
    family_repositories
    family_packages
    prepare_crictl
    prepare_registries
    prepare_containerd
    prepare_offline_images
    prepare_kubelet
    prepare_images
    log "host prepared"
}
