# shellcheck shell=bash
# Shared helpers of every kubeadm-pulumi step script.
#
# renderScript() inlines this file after the generated header (shebang,
# `set -euo pipefail`, one `readonly` line per variable) and before the step's
# body. It only defines functions and KP_* / kp_* globals, so it can also be
# sourced on its own (the tests do that). Rules for everything in here:
# never `set -x`, never print a secret, give every command that can hang a
# `timeout`.

# A fixed PATH (KP_PATH_PREFIX only lets the engine tests put real binaries first).
export PATH=${KP_PATH_PREFIX:+$KP_PATH_PREFIX:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
umask 022

# Step name used as the log prefix: remoteCommand() passes it as $0.
KP_STEP=${KP_STEP:-${0##*/}}
# Paths removed on exit (private temp dirs, half-written temp files).
KP_CLEANUP=()
# Set by write_file_if_changed / install_file_if_changed (see kp_changed).
kp_changed() {
    # shellcheck disable=SC2034 # read by the step bodies that write files
    KP_CHANGED=$1
}
kp_changed false
# Set by private_tmpdir.
KP_TMPDIR=
# Files the init/join steps receive in their stdin bundle (shared PKI).
KP_PKI_FILES=(pki/ca.crt pki/ca.key pki/front-proxy-ca.crt pki/front-proxy-ca.key
    pki/etcd/ca.crt pki/etcd/ca.key pki/sa.key pki/sa.pub)
# (Overridable only so the engine tests can point a step at a test API server.)
KP_ADMIN_CONF=${KP_ADMIN_CONF:-/etc/kubernetes/admin.conf}
KP_LOG_DIR=${KP_LOG_DIR:-/var/log/kubeadm-pulumi}
# kubeadm-pulumi's own state on a host (step claims). (Overridable for the unit tests only.)
KP_STATE_DIR=${KP_STATE_DIR:-/var/lib/kubeadm-pulumi}
# The offline package repository's parent (components/offline.ts OFFLINE_REPO_DIR). (Overridable for the unit tests only.)
KP_OFFLINE_CACHE=${KP_OFFLINE_CACHE:-/var/cache/kubeadm-pulumi}

log() { printf '[%s +%ss] %s\n' "$KP_STEP" "$SECONDS" "$*" >&2; }
warn() { log "warning: $*"; }
die() {
    log "error: $*"
    exit 1
}
# One summary line on stdout (becomes the command's `stdout` output; never a secret).
say() { printf '%s\n' "$*"; }

kp_on_exit() {
    local rc=$? p
    for p in "${KP_CLEANUP[@]}"; do
        rm -rf -- "$p"
    done
    return "$rc"
}
trap kp_on_exit EXIT

# private_tmpdir: create a 0700 directory under $KP_TMPDIR_BASE (default /run,
# a tmpfs, so secrets never reach a disk), store it in KP_TMPDIR, remove it on exit.
# Sets a global instead of printing the path: a `$(...)` subshell would run the
# exit trap, and delete the directory, as soon as it returned.
private_tmpdir() {
    local base=${KP_TMPDIR_BASE:-/run}
    KP_TMPDIR=$(mktemp -d "$base/kubeadm-pulumi.XXXXXXXX") || die "cannot create a private directory under $base"
    KP_CLEANUP+=("$KP_TMPDIR")
    chmod 0700 "$KP_TMPDIR"
}

# The os-release file (overridable for the unit tests only, which show the
# scripts every supported and some unsupported systems).
KP_OS_RELEASE=${KP_OS_RELEASE:-/etc/os-release}

# os_release_field KEY: the unquoted value of KEY in $KP_OS_RELEASE.
os_release_field() {
    local line
    line=$(grep -E "^$1=" "$KP_OS_RELEASE" 2>/dev/null | head -n 1) || true
    line=${line#*=}
    line=${line#[\"\']}
    line=${line%[\"\']}
    printf '%s' "$line"
}

# --- operating systems ------------------------------------------------------
# The systems the scripts support, by os-release ID and VERSION_ID, and the
# family each belongs to (debian: apt, AppArmor; rhel: dnf, SELinux,
# firewalld). docs/os-matrix.md says how each is tested.
# shellcheck disable=SC2034 # read by preflight and prepare
readonly KP_SUPPORTED_OS="Debian 12/13, Ubuntu 22.04/24.04/26.04, or RHEL/Rocky/AlmaLinux/CentOS Stream 9/10"

# kp_os_family_of ID VERSION_ID: "debian" or "rhel" for a supported system, nothing otherwise.
kp_os_family_of() {
    case "$1:$2" in
    debian:12 | debian:13 | ubuntu:22.04 | ubuntu:24.04 | ubuntu:26.04) printf 'debian' ;;
    rhel:9 | rhel:9.[0-9]* | rhel:10 | rhel:10.[0-9]* | rocky:9 | rocky:9.[0-9]* | rocky:10 | rocky:10.[0-9]* | \
        almalinux:9 | almalinux:9.[0-9]* | almalinux:10 | almalinux:10.[0-9]* | centos:9 | centos:10) printf 'rhel' ;;
    esac
}

# kp_os_family_like: the family an unsupported system resembles, from
# os-release ID and ID_LIKE (Linux Mint, Debian 11, Oracle Linux, ...), or nothing.
kp_os_family_like() {
    local words
    words=" $(os_release_field ID) $(os_release_field ID_LIKE) "
    case $words in
    *" debian "* | *" ubuntu "*) printf 'debian' ;;
    *" rhel "* | *" centos "* | *" fedora "* | *" rocky "* | *" almalinux "*) printf 'rhel' ;;
    esac
}

# kp_os_detect: read $KP_OS_RELEASE into KP_OS_ID, KP_OS_VERSION, KP_OS_NAME
# (what the system calls itself) and KP_OS_FAMILY ("debian", "rhel", or empty
# when the system is not supported or there is no os-release).
# shellcheck disable=SC2034 # the globals are read by the steps that need them (preflight, prepare)
kp_os_detect() {
    KP_OS_ID='' KP_OS_VERSION='' KP_OS_NAME='' KP_OS_FAMILY=''
    if [[ ! -r $KP_OS_RELEASE ]]; then
        KP_OS_NAME="(no $KP_OS_RELEASE)"
        return 0
    fi
    KP_OS_ID=$(os_release_field ID)
    KP_OS_VERSION=$(os_release_field VERSION_ID)
    KP_OS_NAME=$(os_release_field PRETTY_NAME)
    KP_OS_NAME="${KP_OS_NAME:-$KP_OS_ID $KP_OS_VERSION} (ID=$KP_OS_ID VERSION_ID=$KP_OS_VERSION)"
    KP_OS_FAMILY=$(kp_os_family_of "$KP_OS_ID" "$KP_OS_VERSION")
}

# bundle_path_ok PATH: the path charset of the stdin bundle (mirrors encodeBundle).
bundle_path_ok() {
    [[ $1 =~ ^[a-z0-9_-][a-z0-9._-]*(/[a-z0-9_-][a-z0-9._-]*)*$ && $1 != *..* ]]
}

# read_bundle DIR: read the secret bundle from stdin (lines `<relative path>
# <base64>`, see encodeBundle) into files under DIR, all created with umask 077.
read_bundle() {
    local dir=${1:-} line path data rc n=0
    [[ -n $dir ]] || die "read_bundle: no directory given"
    (umask 077 && mkdir -p -- "$dir") || die "cannot create $dir"
    while :; do
        line=
        if IFS= read -r -t "${KP_STDIN_TIMEOUT:-120}" line; then
            :
        else
            rc=$?
            ((rc <= 128)) || die "timed out waiting for the secret bundle on stdin"
            [[ -n $line ]] || break
        fi
        [[ -n $line ]] || continue
        [[ $line == *' '* ]] || die "malformed line $((n + 1)) in the secret bundle on stdin"
        path=${line%% *}
        data=${line#* }
        bundle_path_ok "$path" || die "invalid path '$path' in the secret bundle on stdin"
        [[ $data =~ ^[A-Za-z0-9+/]*=*$ ]] || die "invalid base64 for '$path' in the secret bundle on stdin"
        if [[ $path == */* ]]; then
            (umask 077 && mkdir -p -- "$dir/${path%/*}") || die "cannot create $dir/${path%/*}"
        fi
        (umask 077 && printf '%s' "$data" | base64 -d >"$dir/$path") || die "cannot decode '$path' from the secret bundle"
        n=$((n + 1))
    done
    ((n > 0)) || die "expected a secret bundle on stdin, got nothing"
    log "read $n secret file(s) from stdin"
}

# require_bundle_files DIR FILE...: die unless every FILE was in the bundle.
require_bundle_files() {
    local dir=$1 f
    shift
    for f in "$@"; do
        [[ -f $dir/$f ]] || die "the secret bundle on stdin lacks '$f'"
    done
}

# sha256_of FILE: print the hex sha256 of FILE.
sha256_of() {
    local out
    out=$(sha256sum -- "$1")
    printf '%s' "${out%% *}"
}

# kp_owner_mode MODE: the `stat -c '%a %u %g'` string a file we own should have.
kp_owner_mode() {
    local mode
    mode=$(printf '%o' "$((8#$1))")
    if ((EUID == 0)); then
        printf '%s 0 0' "$mode"
    else
        printf '%s %s %s' "$mode" "$(id -u)" "$(id -g)"
    fi
}

# kp_commit_tmp TMP PATH MODE: give TMP its mode (and root ownership) and
# rename it over PATH (atomic: same directory).
kp_commit_tmp() {
    chmod "$3" -- "$1"
    if ((EUID == 0)); then
        chown 0:0 -- "$1"
    fi
    mv -f -- "$1" "$2"
}

# write_file_if_changed PATH MODE CONTENT: write CONTENT (exactly, no newline
# added) to PATH with MODE, atomically, only when the content, mode or
# ownership differs. Sets KP_CHANGED=true|false (a global rather than output,
# so that errors inside still stop the script under `set -e`).
write_file_if_changed() {
    local path=$1 mode=$2 content=$3 current tmp
    kp_changed false
    [[ $mode =~ ^0?[0-7]{3,4}$ ]] || die "write_file_if_changed: bad mode '$mode'"
    if [[ -f $path && ! -L $path ]]; then
        current=$(
            cat -- "$path"
            printf x
        )
        current=${current%x}
        if [[ $current == "$content" && $(stat -c '%a %u %g' -- "$path") == "$(kp_owner_mode "$mode")" ]]; then
            return 0
        fi
    fi
    mkdir -p -- "$(dirname -- "$path")"
    tmp=$(mktemp "$(dirname -- "$path")/.${path##*/}.XXXXXX")
    KP_CLEANUP+=("$tmp")
    printf '%s' "$content" >"$tmp"
    kp_commit_tmp "$tmp" "$path" "$mode"
    kp_changed true
}

# install_file_if_changed SRC PATH MODE: like write_file_if_changed for a file
# (binary-safe), compared by sha256.
install_file_if_changed() {
    local src=$1 path=$2 mode=$3 tmp
    kp_changed false
    if [[ -f $path && ! -L $path ]] && [[ $(sha256_of "$src") == "$(sha256_of "$path")" ]] &&
        [[ $(stat -c '%a %u %g' -- "$path") == "$(kp_owner_mode "$mode")" ]]; then
        return 0
    fi
    mkdir -p -- "$(dirname -- "$path")"
    tmp=$(mktemp "$(dirname -- "$path")/.${path##*/}.XXXXXX")
    KP_CLEANUP+=("$tmp")
    cat -- "$src" >"$tmp"
    kp_commit_tmp "$tmp" "$path" "$mode"
    kp_changed true
}

# kp_lock_holders FILE...: print "pid (command)" of every process holding a
# POSIX (fcntl), OFD or flock lock on one of the FILEs, from /proc/locks.
# apt, dpkg and rpm take fcntl locks, which `flock -n` cannot see, so the
# kernel's lock table is read instead (no fuser/lsof needed).
kp_lock_holders() {
    local f dev ino id pid comm
    [[ -r /proc/locks ]] || return 0
    for f in "$@"; do
        [[ -e $f ]] || continue
        read -r dev ino < <(stat -L -c '%d %i' -- "$f")
        id=$(printf '%02x:%02x:%s' "$(((dev >> 8) & 0xfff))" "$(((dev & 0xff) | ((dev >> 12) & 0xfff00)))" "$ino")
        while read -r pid; do
            [[ $pid =~ ^[0-9]+$ && $pid != "$$" && $pid != "${BASHPID:-$$}" ]] || continue
            comm=$(cat "/proc/$pid/comm" 2>/dev/null || printf 'exited or in another PID namespace; a child may hold its lock')
            printf '%s (%s) on %s\n' "$pid" "$comm" "$f"
        done < <(awk -v id="$id" '{ for (i = 2; i <= NF; i++) if ($i == id) { print $(i - 1); next } }' /proc/locks)
    done
}

# kp_pidfile_holders FILE...: print "pid (command)" for pid files whose pid is alive.
kp_pidfile_holders() {
    local f pid
    for f in "$@"; do
        [[ -f $f ]] || continue
        pid=$(head -c 32 -- "$f" 2>/dev/null | tr -dc '0-9')
        [[ -n $pid && -d /proc/$pid && $pid != "$$" ]] || continue
        printf '%s (%s) from %s\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || printf unknown)" "$f"
    done
}

# wait_for_package_locks [SECONDS]: wait for cloud-init and for any other
# package-manager run (unattended-upgrades, packagekit, dnf-automatic) to
# finish, at most SECONDS (default 600) each; die naming the holder.
wait_for_package_locks() {
    local limit=${1:-600} deadline holders next_log=0 lock_files=() pid_files=()
    if command -v cloud-init >/dev/null 2>&1; then
        log "waiting (at most ${limit}s) for cloud-init to finish"
        timeout "$limit" cloud-init status --wait >/dev/null 2>&1 ||
            warn "cloud-init status --wait did not report success (exit $?); continuing"
    fi
    if command -v apt-get >/dev/null 2>&1; then
        lock_files=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)
    elif command -v dnf >/dev/null 2>&1 || command -v rpm >/dev/null 2>&1; then
        lock_files=(/var/lib/rpm/.rpm.lock /usr/lib/sysimage/rpm/.rpm.lock)
        shopt -s nullglob
        pid_files=(/run/dnf/*.pid /var/run/dnf/*.pid /var/cache/dnf/*.pid /var/lib/dnf/*.pid)
        lock_files+=(/run/dnf/*.lock /var/lib/dnf/*.lock)
        shopt -u nullglob
    fi
    deadline=$((SECONDS + limit))
    while :; do
        holders=$(
            kp_lock_holders "${lock_files[@]}"
            kp_pidfile_holders "${pid_files[@]}"
        )
        [[ -n $holders ]] || return 0
        if ((SECONDS >= deadline)); then
            die "the package manager has been busy for more than ${limit}s; lock holder(s): $(tr '\n' ';' <<<"$holders"). Wait for it to finish or stop it (e.g. systemctl stop unattended-upgrades packagekit dnf-automatic.timer), then re-run pulumi up"
        fi
        if ((SECONDS >= next_log)); then
            log "waiting for the package manager lock, held by: $(tr '\n' ';' <<<"$holders")"
            next_log=$((SECONDS + 30))
        fi
        sleep 3
    done
}

# net_links: one line per network interface of this host, "NAME MAC" (MAC is
# "-" for a link without an ethernet address). From netlink (`ip -o link`),
# which answers for this host's network namespace: /sys/class/net shows
# whichever namespace sysfs was mounted from, inside a container possibly the
# machine's.
net_links() {
    timeout 10 ip -o link show 2>/dev/null | awk '{
        name = $2; sub(/:$/, "", name); sub(/@.*/, "", name); mac = "-"
        for (i = 3; i < NF; i++) if ($i == "link/ether") mac = $(i + 1)
        print name, mac
    }' || true
}

# mask_secrets: filter stdin, hiding bootstrap tokens and certificate keys.
mask_secrets() {
    sed -E -e 's/[a-z0-9]{6}\.[a-z0-9]{16}/<redacted-token>/g' \
        -e 's/(certificate[-_ ]key[^0-9a-f]{0,8})[0-9a-f]{64}/\1<redacted-key>/g'
}

# show_log_tail FILE: print the last 40 lines of FILE to stderr, secrets masked.
show_log_tail() {
    log "last 40 lines of $1 (tokens masked):"
    tail -n 40 -- "$1" | mask_secrets >&2 || true
}

# open_private_log NAME: create $KP_LOG_DIR/NAME (0600, truncated) and print its path.
open_private_log() {
    (umask 077 && mkdir -p -- "$KP_LOG_DIR")
    chmod 0700 -- "$KP_LOG_DIR"
    (umask 077 && : >"$KP_LOG_DIR/$1")
    chmod 0600 -- "$KP_LOG_DIR/$1"
    printf '%s' "$KP_LOG_DIR/$1"
}

# install_pki DIR: copy DIR/pki/* (from the bundle) to /etc/kubernetes/pki,
# keys 0600, certificates and public keys 0644, directories 0700.
install_pki() {
    local src=$1 f mode
    install -d -m 0755 /etc/kubernetes
    install -d -m 0700 /etc/kubernetes/pki /etc/kubernetes/pki/etcd
    for f in "${KP_PKI_FILES[@]}"; do
        mode=0644
        [[ $f != *.key ]] || mode=0600
        install_file_if_changed "$src/$f" "/etc/kubernetes/$f" "$mode"
    done
    log "wrote the cluster CA, front-proxy CA, etcd CA and service-account keys to /etc/kubernetes/pki"
}

# The kubelet's serving certificate and key: issued by the program from the
# cluster CA (pki.ts kubeletServingCert) and named in the KubeletConfiguration
# (tlsCertFile, tlsPrivateKeyFile), so that metrics-server and the API server
# can verify the kubelet instead of trusting a self-signed certificate.
# (KP_KUBELET_PKI_DIR only lets the script tests write elsewhere.)
KP_KUBELET_PKI_DIR=${KP_KUBELET_PKI_DIR:-/var/lib/kubelet/pki}
KP_KUBELET_SERVING_CERT=$KP_KUBELET_PKI_DIR/kubeadm-pulumi-serving.crt
KP_KUBELET_SERVING_KEY=$KP_KUBELET_PKI_DIR/kubeadm-pulumi-serving.key

# install_kubelet_serving DIR [restart]: install DIR/kubelet/serving.{crt,key}
# (from the bundle) where the kubelet configuration names them; with
# `restart`, restart a running kubelet when either changed (a renewed
# certificate on a node that already runs).
install_kubelet_serving() {
    local src=$1 restart=${2:-} changed=false
    (umask 022 && mkdir -p "$KP_KUBELET_PKI_DIR")
    install_file_if_changed "$src/kubelet/serving.crt" "$KP_KUBELET_SERVING_CERT" 0644
    [[ $KP_CHANGED != true ]] || changed=true
    install_file_if_changed "$src/kubelet/serving.key" "$KP_KUBELET_SERVING_KEY" 0600
    [[ $KP_CHANGED != true ]] || changed=true
    [[ $changed == true ]] || return 0
    if [[ $restart == restart ]] && systemctl is-active --quiet kubelet; then
        systemctl restart kubelet
        say "installed a new kubelet serving certificate on $NODE_NAME and restarted the kubelet"
    else
        log "installed the kubelet serving certificate"
    fi
}

# pem_body FILE: the base64 of the PEM blocks in FILE, without armour or whitespace.
pem_body() {
    grep -v -- '-----' "$1" | tr -d ' \t\r\n'
}

# same_ca_or_die DIR [if-present]: on an already set-up host, succeed when its
# cluster CA is the bundle's; die when it belongs to another cluster (or, on a
# control plane, has none). kubeadm join writes the CA on workers too; with
# `if-present` a host without the file passes (compared by the PEM's base64
# body, whatever its line breaks).
same_ca_or_die() {
    local bundle_ca=$1/pki/ca.crt
    if [[ ${2:-} == if-present && ! -f /etc/kubernetes/pki/ca.crt ]]; then
        warn "/etc/kubernetes/pki/ca.crt is missing, so which cluster this host belongs to cannot be checked"
        return 0
    fi
    if [[ ! -f /etc/kubernetes/pki/ca.crt ]] || [[ $(pem_body /etc/kubernetes/pki/ca.crt) != "$(pem_body "$bundle_ca")" ]]; then
        die "this host already runs a cluster with a different CA; run kubeadm reset on it or remove it from the stack"
    fi
}

# kubectl_admin ARGS...: kubectl as cluster admin on this control plane, bounded.
kubectl_admin() {
    timeout 90 kubectl --kubeconfig "$KP_ADMIN_CONF" --request-timeout=60s "$@"
}

# The label of the bootstrap-token Secrets the token step makes: the node they are for.
KP_TOKEN_NODE_LABEL=kubeadm-pulumi.io/node

# delete_node_tokens NODE [KEEP_ID]: delete NODE's bootstrap tokens (the
# Secrets labelled for it), except the one with id KEEP_ID. A failure is a
# warning: a token expires by itself.
delete_node_tokens() {
    local node=$1 keep=${2:-} name list names=()
    if ! list=$(kubectl_admin -n kube-system get secrets -l "$KP_TOKEN_NODE_LABEL=$node" -o name 2>/dev/null); then
        warn "could not list the bootstrap tokens of $node; they expire by themselves"
        return 0
    fi
    mapfile -t names < <(printf '%s\n' "$list" | grep -E '^secret/bootstrap-token-[a-z0-9]{6}$' || true)
    for name in "${names[@]}"; do
        [[ $name != "secret/bootstrap-token-$keep" || -z $keep ]] || continue
        if kubectl_admin -n kube-system delete "$name" --ignore-not-found >/dev/null; then
            say "deleted bootstrap token ${name#secret/bootstrap-token-} of $node"
        else
            warn "could not delete $name; it expires by itself"
        fi
    done
}

# delete_unclaimed_tokens: delete every bootstrap token no node step made
# (those without the program's node label): kubeadm init always creates one,
# valid for 24 hours, that nothing uses. A failure is a warning.
delete_unclaimed_tokens() {
    local list name names=()
    if ! list=$(kubectl_admin -n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token \
        -l "!$KP_TOKEN_NODE_LABEL" -o name 2>/dev/null); then
        warn "could not list bootstrap tokens; kubeadm init's own token expires by itself within 24 hours"
        return 0
    fi
    mapfile -t names < <(printf '%s\n' "$list" | grep -E '^secret/bootstrap-token-[a-z0-9]{6}$' || true)
    for name in "${names[@]}"; do
        if kubectl_admin -n kube-system delete "$name" --ignore-not-found >/dev/null; then
            say "deleted bootstrap token ${name#secret/bootstrap-token-} (not made by this program)"
        else
            warn "could not delete $name; it expires by itself"
        fi
    done
}

# api_answers [SECONDS [URL]]: succeed when the API server answers /readyz
# within SECONDS (default 60), at URL (default: the server in admin.conf).
api_answers() {
    local deadline=$((SECONDS + ${1:-60})) server=()
    [[ -z ${2:-} ]] || server=(--server "$2")
    if [[ ! -f $KP_ADMIN_CONF ]] || ! command -v kubectl >/dev/null 2>&1; then
        return 1
    fi
    while :; do
        if timeout 15 kubectl --kubeconfig "$KP_ADMIN_CONF" "${server[@]}" --request-timeout=10s get --raw=/readyz >/dev/null 2>&1; then
            return 0
        fi
        ((SECONDS < deadline)) || return 1
        sleep 3
    done
}

# filter_iptables_save: drop from an iptables-save dump (stdin) the chains,
# the rules in them and the jumps to them that Kubernetes and CNIs create
# (KUBE-*, CNI-*, FLANNEL*, cali-*, CILIUM_*); everything else is kept.
filter_iptables_save() {
    awk -v re='^(KUBE-|CNI-|FLANNEL|cali-|CILIUM_)' '
        /^:/ { if (substr($1, 2) ~ re) next }
        /^-A / {
            if ($2 ~ re) next
            for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && $(i + 1) ~ re) next
        }
        { print }'
}

# kp_clean_iptables: remove Kubernetes/CNI chains from every iptables backend
# present, keeping the host's own rules (iptables-save | filter | iptables-restore).
kp_clean_iptables() {
    local fam variant save restore before after
    for fam in iptables ip6tables; do
        for variant in "$fam-legacy" "$fam-nft" "$fam"; do
            # plain iptables is one of the two variants when they exist
            if [[ $variant == "$fam" ]] && { command -v "$fam-legacy-save" >/dev/null 2>&1 || command -v "$fam-nft-save" >/dev/null 2>&1; }; then
                continue
            fi
            save=$variant-save
            restore=$variant-restore
            if ! command -v "$save" >/dev/null 2>&1 || ! command -v "$restore" >/dev/null 2>&1; then
                continue
            fi
            before=$(timeout 60 "$save" 2>/dev/null) || continue
            [[ -n $before ]] || continue
            after=$(filter_iptables_save <<<"$before")
            if [[ $before != "$after" ]]; then
                if timeout 60 "$restore" <<<"$after"; then
                    say "removed $(($(wc -l <<<"$before") - $(wc -l <<<"$after"))) Kubernetes/CNI rule(s) and chain(s) from $variant"
                else
                    warn "$restore failed; Kubernetes/CNI rules may remain in $variant"
                fi
            fi
        done
    done
}

# kp_clean_nftables: delete the kube-proxy (nftables mode) and cilium tables.
kp_clean_nftables() {
    local fam name
    command -v nft >/dev/null 2>&1 || return 0
    while read -r _ fam name; do
        case $name in
        kube-proxy | cilium*)
            if timeout 30 nft delete table "$fam" "$name"; then
                say "removed nftables table $fam $name"
            else
                warn "could not delete nftables table $fam $name"
            fi
            ;;
        esac
    done < <(timeout 30 nft list tables 2>/dev/null || true)
}

# kp_clean_cni_binaries: remove the plugin binaries a CNI's init container
# copied into /opt/cni/bin (flannel, calico, cilium), unless a package owns them.
kp_clean_cni_binaries() {
    local f
    for f in /opt/cni/bin/flannel /opt/cni/bin/calico /opt/cni/bin/calico-ipam /opt/cni/bin/cilium-cni; do
        [[ -e $f ]] || continue
        if { command -v dpkg >/dev/null 2>&1 && dpkg -S "$f" >/dev/null 2>&1; } ||
            { command -v rpm >/dev/null 2>&1 && rpm -qf "$f" >/dev/null 2>&1; }; then
            continue
        fi
        rm -f -- "$f"
        say "removed $f (copied there by the CNI)"
    done
}

# cleanup_node_state: remove what kubeadm reset leaves behind (state
# directories, CNI interfaces, iptables/nftables rules) so that init/join can
# run again from scratch. Leaves packages and containerd's config installed.
cleanup_node_state() {
    local m ifname had_ipvs=false
    if command -v systemctl >/dev/null 2>&1 && timeout 30 systemctl is-active --quiet kubelet 2>/dev/null; then
        timeout 60 systemctl stop kubelet || warn "could not stop kubelet"
        say "stopped kubelet"
    fi
    while read -r m; do
        [[ -n $m ]] || continue
        timeout 30 umount -- "$m" 2>/dev/null || timeout 30 umount -l -- "$m" || warn "could not unmount $m"
        say "unmounted $m"
    done < <(awk '$2 ~ "^/var/lib/kubelet(/|$)" { print $2 }' /proc/self/mounts | sort -r)
    for m in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/cni /run/flannel /root/.kube/config; do
        if [[ -e $m || -L $m ]]; then
            rm -rf -- "$m"
            say "removed $m"
        fi
    done
    # Emptied, never removed: containerd 2.x watches this directory and exits
    # ("cni conf dir is removed, stop watching") when the directory goes away.
    if [[ -d /etc/cni/net.d && -n $(ls -A /etc/cni/net.d 2>/dev/null) ]]; then
        find /etc/cni/net.d -mindepth 1 -delete
        say "emptied /etc/cni/net.d"
    fi
    if command -v ip >/dev/null 2>&1; then
        while read -r ifname _; do
            case $ifname in
            cni0 | flannel.1 | flannel-v6.1 | kube-ipvs0 | nodelocaldns | tunl0 | vxlan.calico | cilium_host | cilium_net | cilium_vxlan | cali* | lxc*)
                [[ $ifname != kube-ipvs0 ]] || had_ipvs=true
                if timeout 30 ip link delete "$ifname" 2>/dev/null; then
                    say "removed network interface $ifname"
                elif ip link show "$ifname" >/dev/null 2>&1; then
                    warn "could not delete network interface $ifname"
                fi
                ;;
            esac
        done < <(net_links)
    fi
    kp_clean_cni_binaries
    kp_clean_iptables
    kp_clean_nftables
    if [[ $had_ipvs == true ]] && command -v ipvsadm >/dev/null 2>&1; then
        if timeout 30 ipvsadm --clear; then
            say "cleared IPVS tables"
        else
            warn "ipvsadm --clear failed"
        fi
    fi
    # Restarted so that it forgets the old CNI setup (also brought back if an
    # earlier cleanup left it down).
    if command -v systemctl >/dev/null 2>&1 &&
        { timeout 30 systemctl is-active --quiet containerd 2>/dev/null || timeout 30 systemctl is-enabled --quiet containerd 2>/dev/null; }; then
        if timeout 120 systemctl restart containerd; then
            say "restarted containerd"
        else
            warn "could not restart containerd (see journalctl -u containerd)"
        fi
    fi
}

# --- firewalld ----------------------------------------------------------------
# prepare opens the node's ports (and trusts the pod and service networks)
# when firewalld runs, and records here what it opened itself; reset and
# uninstall close exactly those again. Anything that was open before stays.
KP_FIREWALL_RECORD=$KP_STATE_DIR/firewalld-opened

# kp_firewalld_running: firewalld is installed and running.
kp_firewalld_running() {
    command -v firewall-cmd >/dev/null 2>&1 && [[ $(timeout 30 firewall-cmd --state 2>/dev/null || true) == running ]]
}

# kp_firewalld_item OP ITEM [--permanent]: query, add or remove ITEM, which is
# `port <port>[-<port>]/<proto>` (in the default zone) or `source <CIDR>` (in
# the trusted zone), in the running or (--permanent) the saved configuration.
kp_firewalld_item() {
    local op=$1 kind=${2%% *} value=${2#* } zone=()
    shift 2
    [[ $kind == port ]] || zone=(--zone=trusted)
    case $op in
    query) timeout 30 firewall-cmd "$@" "${zone[@]}" "--query-$kind=$value" >/dev/null 2>&1 ;;
    add | remove) timeout 30 firewall-cmd "$@" "${zone[@]}" "--$op-$kind=$value" >/dev/null ;;
    esac
}

# kp_firewall_close: close what prepare opened in firewalld (the record), in
# the running and the saved configuration, then forget the record.
kp_firewall_close() {
    local item items=() running=false
    [[ -f $KP_FIREWALL_RECORD ]] || return 0
    mapfile -t items <"$KP_FIREWALL_RECORD"
    kp_firewalld_running && running=true
    for item in "${items[@]}"; do
        [[ $item == "port "* || $item == "source "* ]] || continue
        if [[ $running == true ]]; then
            if kp_firewalld_item query "$item" --permanent; then
                kp_firewalld_item remove "$item" --permanent || warn "firewalld: could not remove $item from the saved configuration"
            fi
            if kp_firewalld_item query "$item"; then
                kp_firewalld_item remove "$item" || warn "firewalld: could not remove $item"
            fi
            say "firewalld: closed $item (opened by prepare)"
        elif command -v firewall-offline-cmd >/dev/null 2>&1; then
            local kind=${item%% *} zone=()
            [[ $kind == port ]] || zone=(--zone=trusted)
            timeout 60 firewall-offline-cmd "${zone[@]}" "--remove-$kind=${item#* }" >/dev/null 2>&1 ||
                warn "firewalld (not running): could not remove $item from the saved configuration"
            say "firewalld (not running): removed $item (opened by prepare) from the saved configuration"
        else
            warn "firewalld is not running and firewall-offline-cmd is missing: $item (opened by prepare) stays in its configuration"
        fi
    done
    rm -f -- "$KP_FIREWALL_RECORD"
}

# --- proxy files ------------------------------------------------------------
# What prepare writes for the stack's `proxy` (prepare_proxy, family_proxy),
# and their removal when the host leaves the stack (uninstall). Each is
# recognisably ours: a fixed name, a header, or a marked line.
KP_APT_PROXY_FILE=/etc/apt/apt.conf.d/90kubeadm-pulumi-proxy
KP_CONTAINERD_PROXY_DROPIN=/etc/systemd/system/containerd.service.d/http-proxy.conf
KP_PROXY_MARK='Managed by kubeadm-pulumi (proxy in the stack config)'
KP_DNF_CONF=/etc/dnf/dnf.conf
# The comment line above the proxy= line this step manages in dnf.conf's [main].
KP_DNF_PROXY_MARK='# kubeadm-pulumi: proxy from the stack config (removed with it)'

# kp_dnf_conf_with_proxy URL: dnf.conf (stdin) without the proxy line this step
# manages, plus a new one right after [main] when URL is set.
kp_dnf_conf_with_proxy() {
    awk -v url="$1" -v mark="$KP_DNF_PROXY_MARK" '
        skip { skip = 0; next }
        $0 == mark { skip = 1; next }
        { print }
        !done && url != "" && /^[[:space:]]*\[main\][[:space:]]*$/ { print mark; print "proxy=" url; done = 1 }
        END { if (!done && url != "") { print "[main]"; print mark; print "proxy=" url } }'
}

# kp_remove_proxy_config: remove every proxy setting prepare wrote; restart
# containerd (if it runs) when its drop-in went.
kp_remove_proxy_config() {
    local current wanted
    if [[ -f $KP_APT_PROXY_FILE ]]; then
        rm -f -- "$KP_APT_PROXY_FILE"
        say "removed $KP_APT_PROXY_FILE"
    fi
    if [[ -f $KP_DNF_CONF ]] && grep -qxF -- "$KP_DNF_PROXY_MARK" "$KP_DNF_CONF"; then
        current=$(
            cat -- "$KP_DNF_CONF"
            printf x
        )
        current=${current%x}
        wanted=$(
            kp_dnf_conf_with_proxy "" <<<"${current%$'\n'}"
            printf x
        )
        write_file_if_changed "$KP_DNF_CONF" "$(stat -c %a -- "$KP_DNF_CONF")" "${wanted%x}"
        say "removed the proxy from $KP_DNF_CONF"
    fi
    if [[ -f $KP_CONTAINERD_PROXY_DROPIN ]] && grep -qF -- "$KP_PROXY_MARK" "$KP_CONTAINERD_PROXY_DROPIN"; then
        rm -f -- "$KP_CONTAINERD_PROXY_DROPIN"
        rmdir -- "${KP_CONTAINERD_PROXY_DROPIN%/*}" 2>/dev/null || true
        say "removed $KP_CONTAINERD_PROXY_DROPIN"
        if command -v systemctl >/dev/null 2>&1; then
            timeout 60 systemctl daemon-reload || warn "systemctl daemon-reload failed"
            if timeout 30 systemctl is-active --quiet containerd 2>/dev/null; then
                timeout 120 systemctl restart containerd || warn "could not restart containerd (see journalctl -u containerd)"
                say "restarted containerd without the proxy"
            fi
        fi
    fi
}

# --- step runner and claims -------------------------------------------------
# A step whose delete undoes something (reset, drain, forget a node) holds a
# claim on the host it runs on: a file under $KP_STATE_DIR/claims/<step>/.
#   create  runs the step, then adds a claim;
#   update  runs the step, then makes sure one claim exists;
#   delete  releases one claim and undoes the step only when none is left.
# Pulumi replaces a resource by creating the new one before deleting the old
# one (`pulumi up --replace`, a changed trigger, a provider change), so the old
# delete runs while the new instance's claim is on the host: it releases its
# own claim and leaves the node alone. Only when the step really goes away
# (its host removed from the stack, or `pulumi destroy`) is the last claim
# released and the delete done. A claim is added only after the step
# succeeded, so a failed create (not in Pulumi's state) leaves none behind.

# kp_claims_dir: where the claims of this step ($KP_CLAIM) live.
kp_claims_dir() {
    [[ ${KP_CLAIM:-} =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "KP_CLAIM '${KP_CLAIM:-}' is not a step name"
    printf '%s/claims/%s' "$KP_STATE_DIR" "$KP_CLAIM"
}

# kp_claims_count: how many claims this step holds on this host.
kp_claims_count() {
    local dir n=0 f
    dir=$(kp_claims_dir)
    if [[ -d $dir ]]; then
        for f in "$dir"/claim.*; do
            [[ -e $f ]] && n=$((n + 1))
        done
    fi
    printf '%d' "$n"
}

kp_claim_add() {
    local dir f
    dir=$(kp_claims_dir)
    (umask 077 && mkdir -p -- "$dir") || die "cannot create $dir"
    f=$(mktemp "$dir/claim.XXXXXXXX") || die "cannot write a claim under $dir"
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$KP_ACTION" >"$f"
}

kp_claim_ensure() {
    (($(kp_claims_count) > 0)) || kp_claim_add
}

# kp_claim_release: release one claim; succeed when no claim is left (the
# delete must be done), fail when another instance of the step still holds one.
kp_claim_release() {
    local dir f left
    dir=$(kp_claims_dir)
    for f in "$dir"/claim.*; do
        [[ -e $f ]] || continue
        rm -f -- "$f"
        break
    done
    left=$(kp_claims_count)
    if ((left > 0)); then
        say "kept: another instance of step $KP_CLAIM is live on this host ($left claim(s) under $dir), so this delete is the old half of a replacement and undoes nothing"
        return 1
    fi
    rmdir -- "$dir" 2>/dev/null || true
    return 0
}

# kp_step FUNCTION: run a step body the way KP_ACTION says (see above); `run`
# (steps without a delete) just runs it.
kp_step() {
    local fn=$1
    shift
    case ${KP_ACTION:-run} in
    run) "$fn" "$@" ;;
    create)
        "$fn" "$@"
        kp_claim_add
        ;;
    update)
        "$fn" "$@"
        kp_claim_ensure
        ;;
    delete)
        if kp_claim_release; then
            "$fn" "$@"
        fi
        ;;
    *) die "unknown step action '${KP_ACTION:-}'" ;;
    esac
}
