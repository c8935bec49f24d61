#!/usr/bin/env bash
# Prepares this machine for the sandbox hosts used by tests/hosts/sandbox.ts:
#   1. installs debootstrap, systemd-nspawn, the ssh client and iproute2;
#   2. builds a cached Debian root file system with systemd and sshd under
#      <repo>/.cache/sandbox/rootfs-<release>, once per release: Debian 12
#      (bookworm, the default) or Debian 13 (trixie).
# Idempotent: a second run only checks. Must run as root.
# The base image also has the distribution packages prepare would otherwise
# install from the distribution mirror (curl, gnupg, conntrack, socat,
# ethtool, iptables, nftables, kmod, ...): sandbox hosts reach no mirror.
# The base image gets: user `kube` (passwordless sudo), user `nosudo` (no sudo),
# ssh enabled, `PermitRootLogin prohibit-password`, an empty machine-id and no
# ssh host keys (each per-host copy gets its own of both).
# Environment: SANDBOX_CACHE_DIR (default <repo>/.cache/sandbox),
#              SANDBOX_MIRROR (default: the Debian mirror from apt's sources),
#              SANDBOX_RELEASE (bookworm or trixie; default bookworm).
set -euo pipefail

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "[sandbox setup +$(elapsed)s] $*"; }

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: must run as root" >&2
    exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${SANDBOX_CACHE_DIR:-$repo/.cache/sandbox}
release=${SANDBOX_RELEASE:-bookworm}
case $release in
bookworm | trixie) ;;
*)
    echo "setup.sh: SANDBOX_RELEASE must be bookworm (Debian 12) or trixie (Debian 13), not '$release'" >&2
    exit 1
    ;;
esac
base=$cache/rootfs-$release
mkdir -p "$cache"

# Serialise concurrent runs (parallel jest workers) on one lock.
exec 9>"$cache/.setup.lock"
flock 9

# --- 1. packages -----------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ip >/dev/null || need+=(iproute2)
# (to drop a sandbox host's SSH port from inside its own network namespace)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    log "packages installed"
else
    log "packages present"
fi

# --- 2. base root file system ----------------------------------------------
# Each release's base is stamped with a hash of the recipe (this script from
# the "# --- recipe" line on) and the release name: editing the recipe
# rebuilds every base, adding a release (above) rebuilds none.
recipe=$({ sed -n '/^# --- recipe/,$p' "${BASH_SOURCE[0]}"; echo "$release"; } | sha256sum | cut -c1-16)
stamp=$(cat "$base/.sandbox-ready" 2>/dev/null || true)
# A bookworm base from before releases were selectable carries the hash of
# that whole script (9b2630643a0f8f37); its build steps were exactly the
# recipe below for bookworm, so it is kept, until the recipe changes.
if [ "$release" = bookworm ] && [ "$stamp" = 9b2630643a0f8f37 ] && [ "$recipe" = 2e9cf23e76eb7023 ]; then
    stamp=$recipe
fi
if [ -f "$base/.sandbox-ready" ] && [ "$stamp" = "$recipe" ]; then
    log "base root fs cached at $base (recipe $recipe)"
    exit 0
fi
[ -d "$base" ] && log "cached base root fs is from another recipe: rebuilding"

# The Debian mirror apt already uses (the only one reachable from here).
mirror=${SANDBOX_MIRROR:-}
if [ -z "$mirror" ]; then
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: first stanza whose URIs is a Debian archive (not -security)
        # serving a release itself (a suite without "-"): it serves every release.
        mirror=$(awk '
            /^[[:space:]]*$/ { if (uri != "" && suite ~ / [a-z]+ /) { print uri; exit } uri=""; suite=""; next }
            /^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { uri=$i; break } }
            /^Suites:/ { $1=""; suite=$0 " " }
            END { if (uri != "" && suite ~ / [a-z]+ /) print uri }' "$f" | head -n1)
        [ -n "$mirror" ] && break
    done
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
    echo "setup.sh: no Debian mirror found in apt's sources; set SANDBOX_MIRROR" >&2
    exit 1
fi
log "mirror: $mirror"

# --- recipe: everything from here builds a base (the stamp hashes it) -------
# Build into a temp dir and rename at the end: a half-built tree is never a cache.
rm -rf --one-file-system "$base"
for stale in "$cache"/rootfs-"$release".tmp.*; do
    [ -e "$stale" ] && rm -rf --one-file-system "$stale"
done
tmp=$cache/rootfs-$release.tmp.$$
trap 'rm -rf --one-file-system "$tmp"' EXIT

log "debootstrap $release into $tmp"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,openssh-server,iproute2,sudo,curl,ca-certificates,gnupg,conntrack,socat,ethtool,iptables,nftables,kmod,procps \
    "$release" "$tmp" "$mirror" >"$cache/debootstrap-$release.log" 2>&1 || {
    echo "setup.sh: debootstrap failed; last lines of $cache/debootstrap-$release.log:" >&2
    tail -n 30 "$cache/debootstrap-$release.log" >&2
    exit 1
}
log "debootstrap done"

in_root() { chroot "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

# Users. Password field "*" (not "!"): no password login, but not "locked", so
# sshd accepts public keys whatever UsePAM says.
in_root useradd --create-home --shell /bin/bash kube
in_root useradd --create-home --shell /bin/bash nosudo
in_root usermod -p '*' kube
in_root usermod -p '*' nosudo
printf 'kube ALL=(ALL) NOPASSWD:ALL\n' >"$tmp/etc/sudoers.d/kube"
chmod 0440 "$tmp/etc/sudoers.d/kube"
for u in root kube nosudo; do
    h=$( [ "$u" = root ] && echo /root || echo "/home/$u" )
    mkdir -p "$tmp$h/.ssh"
    chmod 0700 "$tmp$h/.ssh"
    in_root chown "$u:$u" "$h/.ssh"
done

# sshd: root by key only; no DNS lookups (no resolver here).
mkdir -p "$tmp/etc/ssh/sshd_config.d"
cat >"$tmp/etc/ssh/sshd_config.d/10-sandbox.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOF
in_root systemctl enable ssh.service >/dev/null 2>&1
# Sandbox hosts reach no distribution mirror (no route, no DNS): drop the
# image's apt sources so apt does not spend minutes failing to resolve it.
# The prerequisite packages are in the image already (see --include above).
rm -f "$tmp/etc/apt/sources.list" "$tmp"/etc/apt/sources.list.d/*

# Per-copy host keys and machine-id are written by sandbox.ts.
rm -f "$tmp"/etc/ssh/ssh_host_*
: >"$tmp/etc/machine-id"
rm -f "$tmp/var/lib/dbus/machine-id"
# Units that cannot work in a container on this machine; masking keeps boots quick.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
# A minimal hosts file; sandbox.ts appends the sandbox's hosts.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
# Smaller copies (hosts have no route to a mirror, so apt lists are useless there;
# later package installs into the image skip docs and translations too).
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/cache/apt/*.bin "$tmp"/var/lib/apt/lists/*_Packages \
    "$tmp"/var/lib/apt/lists/*_InRelease "$tmp"/var/lib/apt/lists/*_Release* \
    "$tmp"/usr/share/doc/* "$tmp"/usr/share/man/* "$tmp"/usr/share/info/*
find "$tmp/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
cat >"$tmp/etc/dpkg/dpkg.cfg.d/01-sandbox-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF

echo "$recipe" >"$tmp/.sandbox-ready"
trap - EXIT
mv -T "$tmp" "$base"
log "base root fs ready at $base ($(du -sh --one-file-system "$base" | cut -f1))"
