# shellcheck shell=bash
# join: kubeadm join of a worker or an additional control plane. stdin
# bundle: `token` (the bootstrap token), `ca-cert-hash` (sha256:<hex> of the
# cluster CA's public key), `pki/ca.crt`, the kubelet's serving certificate
# `kubelet/serving.crt` and `.key`, and for control planes the rest of the
# shared pki/*. The discovery section (API endpoint, token, CA hash) is
# written here, from checked values, after the JoinConfiguration the program
# rendered: the token goes into that one field and nowhere else, whatever the
# rest of the configuration says.
# Safe to re-run: a host that already joined this cluster is left alone.
# Vars: NODE_NAME, IS_CONTROL_PLANE, JOIN_CONFIG (one JoinConfiguration
# document without `discovery`), API_ENDPOINT (host:port), TOKEN_STEP (the
# token step's name, for the message when the token was refused).

main() {
    local bundle token hash config logfile role=worker
    [[ $IS_CONTROL_PLANE == true ]] && role="control plane"
    [[ $API_ENDPOINT =~ ^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$ ]] || die "API_ENDPOINT '$API_ENDPOINT' is not host:port"
    if grep -qE '^(discovery:|---)' <<<"$JOIN_CONFIG"; then
        die "JOIN_CONFIG must be one JoinConfiguration document without a discovery section"
    fi
    private_tmpdir
    bundle=$KP_TMPDIR/bundle
    read_bundle "$bundle"
    require_bundle_files "$bundle" token ca-cert-hash pki/ca.crt kubelet/serving.crt kubelet/serving.key
    [[ $IS_CONTROL_PLANE != true ]] || require_bundle_files "$bundle" "${KP_PKI_FILES[@]}"
    token=$(tr -d '\n' <"$bundle/token")
    [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "the bootstrap token on stdin is malformed (expected [a-z0-9]{6}.[a-z0-9]{16})"
    hash=$(tr -d '\n' <"$bundle/ca-cert-hash")
    [[ $hash =~ ^sha256:[0-9a-f]{64}$ ]] || die "the CA hash on stdin is malformed (expected sha256:<64 hex digits>)"

    if [[ -f /etc/kubernetes/kubelet.conf ]]; then
        if [[ $IS_CONTROL_PLANE == true ]]; then same_ca_or_die "$bundle"; else same_ca_or_die "$bundle" if-present; fi
        install_kubelet_serving "$bundle" restart
        say "already joined: $NODE_NAME is a $role of the cluster"
        return 0
    fi

    log "joining $NODE_NAME as a $role"
    [[ $IS_CONTROL_PLANE != true ]] || install_pki "$bundle"
    install_kubelet_serving "$bundle"
    config=$KP_TMPDIR/join.yaml
    (
        umask 077
        {
            printf '%s' "$JOIN_CONFIG"
            [[ $JOIN_CONFIG == *$'\n' ]] || printf '\n'
            printf 'discovery:\n  bootstrapToken:\n    apiServerEndpoint: "%s"\n    token: "%s"\n    caCertHashes:\n    - "%s"\n' \
                "$API_ENDPOINT" "$token" "$hash"
        } >"$config"
    )
    timeout 60 kubeadm config validate --config "$config" >&2 ||
        die "kubeadm rejects the generated join configuration (see above)"

    logfile=$(open_private_log join.log)
    log "running kubeadm join (output in $logfile)"
    if ! timeout 900 kubeadm join --config "$config" >>"$logfile" 2>&1; then
        log "kubeadm join failed on $NODE_NAME"
        show_log_tail "$logfile"
        if grep -qE 'could not find a JWS signature|token id "[a-z0-9]{6}" is invalid|has expired' "$logfile"; then
            log "the bootstrap token was not accepted: it lives one hour after the $TOKEN_STEP step made it. Fix: make a fresh one with 'pulumi up --replace <urn of $TOKEN_STEP>' (pulumi stack --show-urns | grep $TOKEN_STEP); replacing a step never resets or removes a node that is still in the stack"
        fi
        log "resetting $NODE_NAME so that the next pulumi up can run join again"
        timeout 300 kubeadm reset -f >>"$logfile" 2>&1 || warn "kubeadm reset -f failed too (see $logfile)"
        cleanup_node_state >&2
        exit 1
    fi
    say "joined: $NODE_NAME is a $role of the cluster"
}

kp_step main "$@"
