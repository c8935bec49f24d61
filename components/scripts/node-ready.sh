# shellcheck shell=bash
# node-ready: on the first control plane after a join, wait until the Node
# object exists (not until it is Ready: the CNI may come later), label it, and
# delete the bootstrap token it joined with (made for this join only).
# Vars: NODE_NAME, NODE_LABELS (key=value items, may be empty), TOKEN_ID.

main() {
    local deadline label
    for label in "${NODE_LABELS[@]}"; do
        [[ $label =~ ^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$ ]] || die "invalid node label '$label' (expected key=value)"
    done
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    log "waiting (at most 300s) for node $NODE_NAME to register"
    deadline=$((SECONDS + 300))
    until kubectl_admin get node "$NODE_NAME" -o name >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "node $NODE_NAME did not register within 300s; check 'journalctl -u kubelet' on it"
        sleep 5
    done
    if ((${#NODE_LABELS[@]} > 0)); then
        kubectl_admin label node "$NODE_NAME" --overwrite "${NODE_LABELS[@]}" >/dev/null ||
            die "kubectl label node $NODE_NAME failed"
        say "node $NODE_NAME registered, labelled ${NODE_LABELS[*]}"
    else
        say "node $NODE_NAME registered"
    fi
    if kubectl_admin -n kube-system delete secret "bootstrap-token-$TOKEN_ID" --ignore-not-found >/dev/null; then
        say "deleted bootstrap token $TOKEN_ID (used by this join only)"
    else
        warn "could not delete the secret kube-system/bootstrap-token-$TOKEN_ID; it expires by itself"
    fi
}

main "$@"
