# shellcheck shell=bash
# reset: on the host itself, when it leaves the cluster (delete of init/join):
# kubeadm reset, then remove what reset leaves behind, and close the firewalld
# ports prepare opened (the node serves nothing any more). Packages stay installed.
# Vars: NODE_NAME.

main() {
    if ! command -v kubeadm >/dev/null 2>&1 && [[ ! -e /etc/kubernetes ]]; then
        kp_firewall_close
        say "nothing to reset on $NODE_NAME"
        return 0
    fi
    log "resetting $NODE_NAME"
    if command -v kubeadm >/dev/null 2>&1; then
        if timeout 300 kubeadm reset -f >&2; then
            say "kubeadm reset done"
        else
            warn "kubeadm reset -f failed or timed out; cleaning up anyway"
        fi
    fi
    cleanup_node_state
    kp_firewall_close
    say "reset $NODE_NAME"
}

kp_step main "$@"
