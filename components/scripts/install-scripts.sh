# shellcheck shell=bash
# install-scripts: the first step on every host. Reads the step scripts from
# stdin (the archive `library()` in index.ts makes: a comment line, then one
# `==> NAME <==` line before each file) and installs them into $KP_LIB, whose
# name is the start of their SHA-256, after checking that hash. Every other
# step on the host sources them from there. Idempotent: an installed,
# verified directory is kept; older versions stay too (the deletes Pulumi
# stored for older steps may name them) until this step's delete removes all.
# Vars: KP_LIB, KP_ACTION, KP_CLAIM, NODE_NAME, LIBRARY_SHA256.

install_library() {
    local root=${KP_LIB%/*} tmp got f
    umask 022
    if [[ -f $KP_LIB/.sha256 && $(cat "$KP_LIB/.sha256") == "$LIBRARY_SHA256" ]]; then
        cat >/dev/null
        printf '%s\n' "step scripts: unchanged ($KP_LIB)"
        return 0
    fi
    mkdir -p -- "$root"
    tmp=$(mktemp -d "$root/.install.XXXXXXXX")
    # shellcheck disable=SC2064 # expand now: the path is fixed
    trap "rm -rf -- '$tmp'" EXIT
    # First line: a comment; the hash covers the rest.
    tail -n +2 >"$tmp/archive"
    got=$(sha256sum <"$tmp/archive")
    got=${got%% *}
    if [[ $got != "$LIBRARY_SHA256" ]]; then
        printf '%s\n' "kubeadm-pulumi: the step scripts on stdin have SHA-256 $got, expected $LIBRARY_SHA256 (transfer damaged?); run pulumi up again" >&2
        exit 1
    fi
    mkdir "$tmp/lib"
    awk -v dir="$tmp/lib" '
        /^==> [a-z0-9][a-z0-9.-]* <==$/ { if (out) close(out); out = dir "/" $2; next }
        out { print > out }' "$tmp/archive"
    for f in "$tmp"/lib/*; do
        chmod 0644 -- "$f"
    done
    printf '%s' "$LIBRARY_SHA256" >"$tmp/lib/.sha256"
    rm -rf -- "$KP_LIB"
    mv -T -- "$tmp/lib" "$KP_LIB"
    printf '%s\n' "step scripts: installed to $KP_LIB"
}

install_library
# shellcheck source=lib.sh
source "$KP_LIB/lib.sh"
installed() { log "step scripts ready on $NODE_NAME"; }
kp_step installed
