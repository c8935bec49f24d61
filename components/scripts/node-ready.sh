# shellcheck shell=bash
# node-ready: on the first control plane after a join, wait until the Node
# object exists (not until it is Ready: the CNI comes later), keep its labels
# and taints as the config says (removing those this step set before and the
# config no longer lists), and delete the node's bootstrap tokens (made for
# the join only). stdin: the token step's output line (so this step runs
# again whenever that one ran), or nothing on the first control plane.
# Vars: NODE_NAME, NODE_LABELS (key=value items), NODE_TAINTS (key[=value]:Effect items).

main() {
    local deadline label taint receipt='' managed line had=()
    for label in "${NODE_LABELS[@]}"; do
        [[ $label =~ ^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$ ]] || die "invalid node label '$label' (expected key=value)"
    done
    for taint in "${NODE_TAINTS[@]}"; do
        [[ $taint =~ ^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$ ]] || die "invalid node taint '$taint' (expected key[=value]:Effect)"
    done
    IFS= read -r -t "${KP_STDIN_TIMEOUT:-120}" receipt || true
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    log "waiting (at most 300s) for node $NODE_NAME to register${receipt:+ (after: $receipt)}"
    deadline=$((SECONDS + 300))
    until kubectl_admin get node "$NODE_NAME" -o name >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "node $NODE_NAME did not register within 300s; check 'journalctl -u kubelet' on it"
        sleep 5
    done
    say "node $NODE_NAME registered"

    # What this step set before (labels by key, taints by key:effect).
    managed=$KP_STATE_DIR/nodes/$NODE_NAME.managed
    if [[ -f $managed ]]; then
        mapfile -t had <"$managed"
    fi
    for line in "${had[@]}"; do
        case $line in
        "label "*)
            label=${line#label }
            if ! printf '%s\n' "${NODE_LABELS[@]}" | grep -q -- "^$label="; then
                kubectl_admin label node "$NODE_NAME" "$label-" >/dev/null || die "kubectl label node $NODE_NAME $label- failed"
                say "removed label $label from $NODE_NAME"
            fi
            ;;
        "taint "*)
            taint=${line#taint }
            if ! printf '%s\n' "${NODE_TAINTS[@]}" | sed -E 's/=[^:]*:/:/' | grep -qxF -- "$taint"; then
                kubectl_admin taint node "$NODE_NAME" "$taint-" >/dev/null 2>&1 || warn "taint $taint was already gone from $NODE_NAME"
                say "removed taint $taint from $NODE_NAME"
            fi
            ;;
        esac
    done
    if ((${#NODE_LABELS[@]} > 0)); then
        kubectl_admin label node "$NODE_NAME" --overwrite "${NODE_LABELS[@]}" >/dev/null ||
            die "kubectl label node $NODE_NAME failed"
        say "labelled $NODE_NAME ${NODE_LABELS[*]}"
    fi
    for taint in "${NODE_TAINTS[@]}"; do
        kubectl_admin taint node "$NODE_NAME" --overwrite "$taint" >/dev/null || die "kubectl taint node $NODE_NAME $taint failed"
        say "tainted $NODE_NAME $taint"
    done
    (umask 077 && mkdir -p -- "${managed%/*}")
    {
        for label in "${NODE_LABELS[@]}"; do printf 'label %s\n' "${label%%=*}"; done
        for taint in "${NODE_TAINTS[@]}"; do printf 'taint %s\n' "$(sed -E 's/=[^:]*:/:/' <<<"$taint")"; done
    } >"$managed.tmp"
    mv -f -- "$managed.tmp" "$managed"
    delete_node_tokens "$NODE_NAME"
}

kp_step main "$@"
