# shellcheck shell=bash
# node-ready: on the first control plane after a join, wait until the Node
# object exists (not until it is Ready: the CNI comes later), label it, and
# delete the node's bootstrap token (made for this join only). stdin: the
# token step's output line, so this step runs again whenever that one ran.
# Vars: NODE_NAME, NODE_LABELS (key=value items, may be empty).

main() {
    local deadline label receipt=''
    for label in "${NODE_LABELS[@]}"; do
        [[ $label =~ ^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$ ]] || die "invalid node label '$label' (expected key=value)"
    done
    IFS= read -r -t "${KP_STDIN_TIMEOUT:-120}" receipt || true
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    log "waiting (at most 300s) for node $NODE_NAME to register${receipt:+ (after: $receipt)}"
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
    delete_node_tokens "$NODE_NAME"
}

kp_step main "$@"
