# shellcheck shell=bash
# uninstall: the scripts step's delete, the last step undone on a host that
# leaves the stack: remove the step scripts (every version) and
# kubeadm-pulumi's own state and logs, the unpacked offline package
# repository (/var/cache/kubeadm-pulumi), and the proxy settings prepare wrote
# (apt, dnf, containerd's drop-in). Packages and their configuration stay
# (see the README's Teardown).
# Vars: NODE_NAME.

main() {
    local p
    # (a host prepared but never joined has no reset: its ports close here)
    kp_firewall_close
    kp_remove_proxy_config
    for p in "${KP_LIB%/*}" "$KP_STATE_DIR" "$KP_LOG_DIR" "$KP_OFFLINE_CACHE"; do
        if [[ -e $p ]]; then
            rm -rf -- "$p"
            say "removed $p"
        fi
    done
    say "kubeadm-pulumi's scripts and state removed from $NODE_NAME"
}

kp_step main "$@"
