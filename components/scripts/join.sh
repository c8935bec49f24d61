# shellcheck shell=bash
# join: kubeadm join of a worker or an additional control plane. stdin bundle:
# `token` (the bootstrap token) and, for control planes, the shared pki/*.
# Safe to re-run: a host that already joined is left alone.
# Vars: NODE_NAME, IS_CONTROL_PLANE, JOIN_CONFIG (with the placeholder
# __BOOTSTRAP_TOKEN__ where the token goes), TOKEN_TTL_SECONDS (for the
# message when the token has expired).

readonly TOKEN_PLACEHOLDER=__BOOTSTRAP_TOKEN__

main() {
    local bundle token config logfile role=worker
    [[ $IS_CONTROL_PLANE == true ]] && role="control plane"
    private_tmpdir
    bundle=$KP_TMPDIR/bundle
    read_bundle "$bundle"
    require_bundle_files "$bundle" token
    [[ $IS_CONTROL_PLANE != true ]] || require_bundle_files "$bundle" "${KP_PKI_FILES[@]}"
    token=$(tr -d '\n' <"$bundle/token")
    [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "the bootstrap token on stdin is malformed (expected [a-z0-9]{6}.[a-z0-9]{16})"
    [[ $JOIN_CONFIG == *"$TOKEN_PLACEHOLDER"* ]] || die "JOIN_CONFIG has no $TOKEN_PLACEHOLDER placeholder"

    if [[ -f /etc/kubernetes/kubelet.conf ]]; then
        [[ $IS_CONTROL_PLANE != true ]] || same_ca_or_die "$bundle"
        say "already joined: $NODE_NAME is a $role of the cluster"
        return 0
    fi

    log "joining $NODE_NAME as a $role"
    [[ $IS_CONTROL_PLANE != true ]] || install_pki "$bundle"
    config=$KP_TMPDIR/join.yaml
    (umask 077 && printf '%s' "${JOIN_CONFIG//"$TOKEN_PLACEHOLDER"/"$token"}" >"$config")
    timeout 60 kubeadm config validate --config "$config" >&2 ||
        die "kubeadm rejects the generated join configuration (see above)"

    logfile=$(open_private_log join.log)
    log "running kubeadm join (output in $logfile)"
    if ! timeout 900 kubeadm join --config "$config" >>"$logfile" 2>&1; then
        log "kubeadm join failed on $NODE_NAME"
        show_log_tail "$logfile"
        if grep -qE 'could not find a JWS signature|token id "[a-z0-9]{6}" is invalid|has expired' "$logfile"; then
            log "the bootstrap token was not accepted: tokens live $((TOKEN_TTL_SECONDS / 3600))h after the $NODE_NAME-token step ran. Fix: make a fresh one with 'pulumi up --target-replace <urn of $NODE_NAME-token>' (pulumi stack --show-urns | grep $NODE_NAME-token)"
        fi
        log "resetting $NODE_NAME so that the next pulumi up can run join again"
        timeout 300 kubeadm reset -f >>"$logfile" 2>&1 || warn "kubeadm reset -f failed too (see $logfile)"
        cleanup_node_state >&2
        exit 1
    fi
    say "joined: $NODE_NAME is a $role of the cluster"
}

main "$@"
