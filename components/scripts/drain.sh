# shellcheck shell=bash
# drain: on the first control plane, before a node is reset, drain it. Never
# fails a teardown: errors and an unreachable API are warnings.
# Vars: NODE_NAME, DRAIN_TIMEOUT_SECONDS.

main() {
    if [[ ! -f $KP_ADMIN_CONF ]] || ! api_answers 60; then
        warn "the API server is not reachable from here; not draining $NODE_NAME"
        return 0
    fi
    if ! kubectl_admin get node "$NODE_NAME" -o name >/dev/null 2>&1; then
        say "node $NODE_NAME is not in the cluster; nothing to drain"
        return 0
    fi
    log "draining $NODE_NAME (at most ${DRAIN_TIMEOUT_SECONDS}s)"
    if timeout $((DRAIN_TIMEOUT_SECONDS + 60)) kubectl --kubeconfig "$KP_ADMIN_CONF" drain "$NODE_NAME" \
        --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_TIMEOUT_SECONDS}s" >&2; then
        say "drained $NODE_NAME"
    else
        warn "draining $NODE_NAME failed or timed out; continuing with its removal"
    fi
}

kp_step main "$@"
