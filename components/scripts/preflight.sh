# shellcheck shell=bash
# preflight: read-only checks on every host, in parallel, before anything is
# changed. Collects every problem, then fails once listing them all; on success
# prints exactly one line of JSON facts on stdout.
# Vars: NODE_NAME, IS_CONTROL_PLANE, KUBERNETES_MINOR, MIN_CPUS, MIN_MEMORY_MB, PORTS,
# IGNORE (check ids whose problems become warnings: the stack's preflight.ignore),
# DISK (`dir<TAB>signal<TAB>value<TAB>percent<TAB>bytes` per kubelet filesystem
# eviction threshold: the stack's kubeadm.kubelet.evictionHard or the kubelet's default),
# SOURCES (`family<TAB>label<TAB>url<TAB>via` per package repository, image
# registry or mirror, and proxy; via is the proxy to reach it through, or "").

PROBLEMS=()
WARNINGS=()

# problem ID WHAT FIX: record a problem of check ID, or a warning when the
# stack config lists ID in preflight.ignore.
problem() {
    local id=$1 ignored
    for ignored in "${IGNORE[@]}"; do
        if [[ $ignored == "$id" ]]; then
            WARNINGS+=("ignored by preflight.ignore ($id): $2")
            return 0
        fi
    done
    PROBLEMS+=("$2. Fix: $3")
}
warning() { WARNINGS+=("$1"); }

# json_string VALUE: VALUE as a JSON string literal.
json_string() {
    local s=$1 out='' c i
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    if [[ $s == *[[:cntrl:]]* ]]; then
        for ((i = 0; i < ${#s}; i++)); do
            c=${s:i:1}
            case $c in
            $'\n') out+='\n' ;;
            $'\r') out+='\r' ;;
            $'\t') out+='\t' ;;
            [[:cntrl:]]) out+=$(printf '\\u%04x' "'$c") ;;
            *) out+=$c ;;
            esac
        done
        s=$out
    fi
    printf '"%s"' "$s"
}

# tcp_answers HOST PORT: a TCP connection to HOST:PORT opens within 5 s
# (bash's /dev/tcp: nothing beyond bash and coreutils' timeout is needed).
tcp_answers() {
    # shellcheck disable=SC2016 # $1/$2 are the inner bash's arguments
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# url_host_port URL: "HOST PORT" of an http(s) URL (default ports 80/443; IPv6 without brackets).
url_host_port() {
    local url=$1 rest hostport host port
    rest=${url#*://}
    hostport=${rest%%/*}
    if [[ $hostport == \[* ]]; then
        host=${hostport%%]*}
        host=${host#[}
        port=${hostport#*]}
        port=${port#:}
    elif [[ $hostport == *:* ]]; then
        host=${hostport%%:*}
        port=${hostport##*:}
    else
        host=$hostport
        port=
    fi
    if [[ -z $port ]]; then
        case $url in https://*) port=443 ;; *) port=80 ;; esac
    fi
    printf '%s %s' "$host" "$port"
}

# source_problem URL VIA: print why URL cannot be reached from this host
# (directly, or through the proxy VIA), or nothing when it can. Direct: a
# TCP connection (reachability, not content: an answer of any kind is
# fine). Through a proxy: curl asks the proxy for the URL; an answer from
# the other side (any HTTP status but the proxy's own 407/502/503/504)
# counts. Returns 2 when it could not be checked (no curl).
source_problem() {
    local url=$1 via=$2 host port out code why
    case $url in
    file://*)
        [[ -e ${url#file://} ]] || printf '%s does not exist on this host' "${url#file://}"
        return 0
        ;;
    esac
    if [[ -z $via ]]; then
        read -r host port < <(url_host_port "$url")
        tcp_answers "$host" "$port" || printf 'no TCP connection to %s port %s within 5 s (DNS, routing or a firewall)' "$host" "$port"
        return 0
    fi
    command -v curl >/dev/null 2>&1 || return 2
    # (%{errormsg}: curl 7.75+; Debian 12, Ubuntu 22.04 and RHEL 9 ship newer)
    out=$(timeout 20 curl -s -k -I -o /dev/null -w '%{http_code} %{errormsg}' --connect-timeout 5 --max-time 15 -x "$via" -- "$url" 2>/dev/null) || true
    code=${out%% *}
    why=${out#"$code"}
    why=${why# }
    case $code in
    000 | '' | *[!0-9]*) printf 'no answer through the proxy %s%s' "$via" "${why:+ ($why)}" ;;
    407 | 502 | 503 | 504) printf 'the proxy %s answered HTTP %s' "$via" "$code" ;;
    esac
    return 0
}

# check_sources FAMILY: one problem per configured source this host cannot reach.
check_sources() {
    local family=$1 line f label url via why rc
    for line in "${SOURCES[@]}"; do
        IFS=$'\t' read -r f label url via <<<"$line"
        [[ $f == any || $f == "$family" || -z $family ]] || continue
        rc=0
        why=$(source_problem "$url" "$via") || rc=$?
        if ((rc == 2)); then
            warning "cannot check that $label ($url) answers through the proxy $via: curl is missing (prepare installs it)"
        elif [[ -n $why ]]; then
            problem source "cannot reach $label ($url) from this host: $why" \
                "open the way from this host to it (firewall, routing, DNS), fix the URL in the stack config, or set proxy / proxy.noProxy; preflight.ignore: [source] goes on without this check"
        fi
    done
}

# Room the node is about to need on top of the eviction threshold: images and logs.
readonly DISK_HEADROOM_BYTES=$((2 * 1024 * 1024 * 1024))

# gib BYTES: BYTES in GiB, one decimal.
gib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1073741824 }'; }

# check_disk: each kubelet filesystem must stay above its eviction threshold
# with room to spare, or the node comes up under DiskPressure: Ready, yet the
# kubelet refuses every pod that is not critical.
check_disk() {
    local item dir signal value pct bytes at line size avail need mount reported=()
    for item in "${DISK[@]}"; do
        # (tab is IFS whitespace: empty fields would collapse; split on | instead)
        IFS='|' read -r dir signal value pct bytes <<<"${item//$'\t'/|}"
        at=$dir
        while [[ ! -e $at && $at != / ]]; do at=$(dirname "$at"); done
        line=$(df -P -B1 "$at" 2>/dev/null | awk 'NR == 2 { print $2, $4, $6 }') || line=''
        read -r size avail mount <<<"$line"
        if [[ ! $size =~ ^[0-9]+$ || ! $avail =~ ^[0-9]+$ || $size -eq 0 ]]; then
            warning "cannot read the free space of $dir's filesystem (df -P $at)"
            continue
        fi
        if [[ -n $pct ]]; then
            need=$(awk -v s="$size" -v p="$pct" 'BEGIN { printf "%.0f", s * p / 100 }')
        else
            need=$bytes
        fi
        need=$((need + DISK_HEADROOM_BYTES))
        ((avail < need)) || continue
        # (the same filesystem under both directories: one message, for the first DISK item it falls short of)
        [[ " ${reported[*]} " == *" $mount "* ]] && continue
        reported+=("$mount")
        problem disk "$dir is on $mount with $(gib "$avail") GiB free of $(gib "$size") GiB ($((avail * 100 / size))%), under the kubelet's eviction threshold $signal<$value plus 2 GiB for the images and logs the node is about to write: the node would be DiskPressure, Ready but refusing every pod that is not critical" \
            "free space on $mount (or give $dir a filesystem of its own), or set kubeadm.kubelet.evictionHard.$signal to what this disk can keep free"
    done
}

main() {
    # stdout carries only the final JSON line: everything else goes to stderr.
    exec 3>&1 1>&2

    local os_id='' os_version='' os_family='' like='' kernel cgroup=none cpus=0 mem_mb=0
    local product_uuid='' swap_on=false containerd_version='' already_joined=false
    local c major minor state missing_controllers=() macs=() mac name pm cmd

    log "checking host $NODE_NAME for Kubernetes $KUBERNETES_MINOR ($([[ $IS_CONTROL_PLANE == true ]] && echo control plane || echo worker))"

    # --- operating system -------------------------------------------------
    kp_os_detect
    os_id=$KP_OS_ID
    os_version=$KP_OS_VERSION
    os_family=$KP_OS_FAMILY
    if [[ ! -r $KP_OS_RELEASE ]]; then
        PROBLEMS+=("$KP_OS_RELEASE is missing, so the operating system cannot be identified. Fix: use $KP_SUPPORTED_OS")
    elif [[ -z $os_family ]]; then
        like=$(kp_os_family_like)
        if [[ -n $like ]]; then
            problem os "unsupported operating system $KP_OS_NAME; supported: $KP_SUPPORTED_OS" \
                "use a supported system, or accept the risk with preflight.ignore: [os] (prepare then treats it as the $like family)"
            os_family=$like
        else
            # Not ignorable: prepare knows neither its package manager nor its quirks.
            PROBLEMS+=("unsupported operating system $KP_OS_NAME, of neither the Debian nor the RHEL family; supported: $KP_SUPPORTED_OS. Fix: use a supported system")
        fi
    fi

    # --- kernel -------------------------------------------------------------
    kernel=$(uname -r)
    if [[ $kernel =~ ^([0-9]+)\.([0-9]+) ]]; then
        major=${BASH_REMATCH[1]}
        minor=${BASH_REMATCH[2]}
        if ((major < 5 || (major == 5 && minor < 4))); then
            problem kernel "kernel $kernel is older than 5.4" "upgrade the kernel (or the distribution) to 5.4 or newer and reboot"
        fi
    else
        problem kernel "cannot parse the kernel version '$kernel'" "run a Linux kernel 5.4 or newer"
    fi

    # --- cgroup v2 ----------------------------------------------------------
    c=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)
    if [[ $c == cgroup2fs ]]; then
        cgroup=v2
        for name in cpu memory pids; do
            if ! grep -qw -- "$name" /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
                missing_controllers+=("$name")
            fi
        done
        if ((${#missing_controllers[@]} > 0)); then
            problem cgroup "cgroup v2 is mounted but the controller(s) ${missing_controllers[*]} are not available in /sys/fs/cgroup/cgroup.controllers" \
                "enable them (on a VM or container host, delegate the cpu, memory and pids controllers to this system)"
        fi
    else
        [[ $c == tmpfs || $c == cgroupfs ]] && cgroup=v1
        problem cgroup "the host does not use cgroup v2 (/sys/fs/cgroup is '${c:-missing}', not cgroup2fs); kubelet 1.35 and newer refuse to run on cgroup v1" \
            "boot with cgroup v2: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub (Debian/Ubuntu) or grub2-mkconfig -o /boot/grub2/grub.cfg (RHEL family), and reboot"
    fi

    # --- size (control planes) ----------------------------------------------
    cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo 0)
    mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo 2>/dev/null || echo 0)
    if [[ $IS_CONTROL_PLANE == true ]]; then
        if ((cpus < MIN_CPUS)); then
            problem cpu "the host has $cpus CPU(s); a control plane needs at least $MIN_CPUS" "give the host at least $MIN_CPUS CPUs, or make it a worker in the stack config"
        fi
        if ((mem_mb < MIN_MEMORY_MB)); then
            problem memory "the host has ${mem_mb} MB of memory; a control plane needs at least $MIN_MEMORY_MB MB" "give the host at least $MIN_MEMORY_MB MB of memory, or make it a worker in the stack config"
        fi
    fi

    # --- hostname -----------------------------------------------------------
    name=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)
    name=${name%%.*}
    name=${name,,}
    if [[ $name != "$NODE_NAME" ]]; then
        problem hostname "the hostname is '$name' but the stack config calls this host '$NODE_NAME'" \
            "run 'hostnamectl set-hostname $NODE_NAME' on the host, or rename the host to '$name' in the stack config"
    fi

    # --- base commands --------------------------------------------------------
    local -A pkg_deb=([systemctl]=systemd [ip]=iproute2 [mount]=mount [nsenter]=util-linux [base64]=coreutils
        [sha256sum]=coreutils [flock]=util-linux [timeout]=coreutils [ss]=iproute2 [apt-get]=apt)
    local -A pkg_rpm=([systemctl]=systemd [ip]=iproute [mount]=util-linux [nsenter]=util-linux [base64]=coreutils
        [sha256sum]=coreutils [flock]=util-linux [timeout]=coreutils [ss]=iproute [dnf]=dnf)
    local needed=(systemctl ip mount nsenter base64 sha256sum flock timeout ss)
    case $os_family in
    debian) needed+=(apt-get) ;;
    rhel) needed+=(dnf) ;;
    esac
    for cmd in "${needed[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 && continue
        case $os_family in
        debian) pm="apt-get install -y ${pkg_deb[$cmd]}" ;;
        rhel) pm="dnf install -y ${pkg_rpm[$cmd]}" ;;
        *) pm="install the package that provides it" ;;
        esac
        problem command "the command '$cmd' is missing" "$pm"
    done

    # --- systemd ------------------------------------------------------------
    c=$(cat /proc/1/comm 2>/dev/null || true)
    if [[ $c != systemd ]]; then
        problem systemd "PID 1 is '${c:-unknown}', not systemd; kubelet and containerd are run as systemd services" \
            "use a host (VM or bare metal) booted with systemd, not a plain container"
    elif command -v systemctl >/dev/null 2>&1; then
        state=$(timeout 20 systemctl is-system-running 2>/dev/null || true)
        case $state in
        running) ;;
        degraded) warning "systemd reports 'degraded' (some units failed; see systemctl --failed)" ;;
        *)
            problem systemd "systemd reports the system as '${state:-unknown}' (expected running or degraded)" \
                "wait for the boot to finish or fix what 'systemctl list-jobs' and 'systemctl --failed' show, then re-run pulumi up"
            ;;
        esac
        if timeout 20 systemctl is-active --quiet crio 2>/dev/null; then
            problem runtime "CRI-O (crio.service) is running; this program installs containerd and kubeadm refuses two container runtimes" \
                "run 'systemctl disable --now crio' and remove CRI-O, or leave this host out of the stack"
        fi
    fi

    # --- ports (skipped on a host that is already a node of the cluster) -----
    if [[ -f /etc/kubernetes/kubelet.conf ]]; then
        already_joined=true
        log "/etc/kubernetes/kubelet.conf exists: the host is already a node, port checks skipped"
    elif command -v ss >/dev/null 2>&1; then
        local listening port holder
        listening=$(timeout 20 ss -Hltn 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
        for port in "${PORTS[@]}"; do
            if grep -qx -- "$port" <<<"$listening"; then
                holder=$(timeout 20 ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1 |
                    sed -E 's/users:\(\("([^"]*)",pid=([0-9]*)/\1 (pid \2)/') || true
                problem port "TCP port $port is already in use${holder:+ by $holder}" \
                    "stop whatever listens on port $port (ss -ltnp 'sport = :$port' shows it), or use another host"
            fi
        done
    fi

    # --- sources: package repositories, image registries, the proxy ----------
    if ((${#SOURCES[@]} > 0)); then
        check_sources "$os_family"
    fi

    # --- disk -----------------------------------------------------------------
    check_disk

    # --- things prepare will fix: warnings only -------------------------------
    if [[ $(awk 'NR > 1' /proc/swaps 2>/dev/null) ]]; then
        swap_on=true
        warning "swap is on: prepare will turn it off and comment it out of /etc/fstab"
    fi
    if [[ ! -d /proc/sys/net/bridge ]]; then
        warning "/proc/sys/net/bridge is missing: prepare will load the br_netfilter module"
    fi
    if [[ $os_family == rhel ]] && command -v getenforce >/dev/null 2>&1 && [[ $(timeout 20 getenforce 2>/dev/null || true) == Enforcing ]]; then
        warning "SELinux is enforcing: prepare will set it permissive (setenforce 0 and SELINUX=permissive in /etc/selinux/config)"
    fi
    if kp_firewalld_running; then
        warning "firewalld is running: prepare will open this node's ports and trust the pod and service networks (reset closes them again)"
    fi

    # --- facts ------------------------------------------------------------------
    if [[ -r /sys/class/dmi/id/product_uuid ]]; then
        product_uuid=$(tr -d '[:space:]' 2>/dev/null </sys/class/dmi/id/product_uuid || true)
    fi
    product_uuid=${product_uuid,,}
    if command -v containerd >/dev/null 2>&1; then
        containerd_version=$(timeout 10 containerd --version 2>/dev/null | awk '{ print $3 }' || true)
        containerd_version=${containerd_version#v}
    fi
    while read -r name mac; do
        case $name in
        lo | cni* | flannel* | cali* | cilium* | vxlan* | veth* | docker* | kube-ipvs* | tunl* | nodelocaldns* | lxc*) continue ;;
        esac
        mac=${mac,,}
        [[ $mac =~ ^[0-9a-f]{2}(:[0-9a-f]{2})+$ && ! $mac =~ ^(00:)+00$ ]] || continue
        macs+=("$mac")
    done < <(net_links)

    for c in "${WARNINGS[@]}"; do
        warn "$c"
    done
    if ((${#PROBLEMS[@]} > 0)); then
        {
            printf 'preflight failed on host %s:\n' "$NODE_NAME"
            printf '  - %s\n' "${PROBLEMS[@]}"
        } >&2
        exit 1
    fi

    local macs_json='' sep=''
    if ((${#macs[@]} > 0)); then
        while read -r mac; do
            macs_json+="$sep$(json_string "$mac")"
            sep=,
        done < <(printf '%s\n' "${macs[@]}" | sort -u)
    fi
    printf '{"node":%s,"os":{"id":%s,"versionId":%s,"family":%s},"kernel":%s,"cgroup":%s,"cpus":%d,"memoryMb":%d,"productUuid":%s,"macs":[%s],"swapOn":%s,"containerd":%s,"alreadyJoined":%s}\n' \
        "$(json_string "$NODE_NAME")" "$(json_string "$os_id")" "$(json_string "$os_version")" "$(json_string "$os_family")" \
        "$(json_string "$kernel")" "$(json_string "$cgroup")" "$cpus" "$mem_mb" "$(json_string "$product_uuid")" \
        "$macs_json" "$swap_on" "$(json_string "$containerd_version")" "$already_joined" >&3
    log "preflight passed on $NODE_NAME"
}

kp_step main "$@"
