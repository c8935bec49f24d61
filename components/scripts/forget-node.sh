# shellcheck shell=bash
# forget-node: on the first control plane, after a node was reset, delete its
# bootstrap tokens and its Node object. Never fails a teardown: a missing or
# unreachable control plane is a warning.
# Vars: NODE_NAME.

main() {
    if [[ ! -f $KP_ADMIN_CONF ]]; then
        warn "$KP_ADMIN_CONF is missing; not deleting node $NODE_NAME and its tokens from the cluster"
        return 0
    fi
    if ! api_answers 60; then
        warn "the API server does not answer; not deleting node $NODE_NAME and its tokens from the cluster"
        return 0
    fi
    delete_node_tokens "$NODE_NAME"
    rm -f -- "$KP_STATE_DIR/nodes/$NODE_NAME.managed"
    if kubectl_admin delete node "$NODE_NAME" --ignore-not-found >/dev/null; then
        say "deleted node $NODE_NAME"
    else
        warn "could not delete node $NODE_NAME"
    fi
}

kp_step main "$@"
