# shellcheck shell=bash
# init: kubeadm init on the first control plane, with the cluster PKI the
# program generated (stdin bundle: pki/ca.crt pki/ca.key pki/front-proxy-ca.*
# pki/etcd/ca.* pki/sa.key pki/sa.pub, and the kubelet's serving certificate
# kubelet/serving.crt and .key). Safe to re-run: an initialised host
# with the same CA is left alone.
# Vars: NODE_NAME, KUBEADM_CONFIG, API_ENDPOINT.

readonly CONFIG_DIR=/etc/kubernetes/kubeadm-pulumi
readonly CONFIG_FILE=$CONFIG_DIR/init.yaml

main() {
    local bundle logfile
    private_tmpdir
    bundle=$KP_TMPDIR/bundle
    read_bundle "$bundle"
    require_bundle_files "$bundle" "${KP_PKI_FILES[@]}" kubelet/serving.crt kubelet/serving.key

    if [[ -f $KP_ADMIN_CONF && -f /var/lib/kubelet/config.yaml ]]; then
        same_ca_or_die "$bundle"
        install_kubelet_serving "$bundle" restart
        say "already initialised: $NODE_NAME runs this cluster's control plane"
        return 0
    fi

    log "initialising the cluster on $NODE_NAME"
    install_pki "$bundle"
    install_kubelet_serving "$bundle"
    install -d -m 0700 "$CONFIG_DIR"
    write_file_if_changed "$CONFIG_FILE" 0600 "$KUBEADM_CONFIG"
    timeout 60 kubeadm config validate --config "$CONFIG_FILE" >&2 ||
        die "kubeadm rejects the generated configuration $CONFIG_FILE (see above)"

    logfile=$(open_private_log init.log)
    log "running kubeadm init (output in $logfile; it can take a few minutes)"
    if ! timeout 900 kubeadm init --config "$CONFIG_FILE" --skip-token-print --skip-certificate-key-print >>"$logfile" 2>&1; then
        log "kubeadm init failed on $NODE_NAME"
        show_log_tail "$logfile"
        log "resetting $NODE_NAME so that the next pulumi up can run init again"
        timeout 300 kubeadm reset -f >>"$logfile" 2>&1 || warn "kubeadm reset -f failed too (see $logfile)"
        cleanup_node_state >&2
        exit 1
    fi

    log "waiting (at most 300s) for the API server at $API_ENDPOINT to be ready"
    api_answers 300 "https://$API_ENDPOINT" ||
        die "kubeadm init succeeded but https://$API_ENDPOINT/readyz did not answer within 300s; check 'ctr -n k8s.io tasks ls' and 'journalctl -u kubelet' on $NODE_NAME, and that $API_ENDPOINT reaches it"
    delete_unclaimed_tokens
    say "initialised: $NODE_NAME is the first control plane, API ready at https://$API_ENDPOINT"
}

kp_step main "$@"
