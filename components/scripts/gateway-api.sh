# shellcheck shell=bash
# gateway-api: on the first control plane, apply the Gateway API CRDs the
# ingress controller serves (server-side, so a re-run or a newer release
# updates them in place), and wait until the API server serves them.
# CRDS_SOURCE is an http(s) URL kubectl fetches from this host, or `-` for
# the manifest on stdin (a local file of the machine running Pulumi).
# Deleting the step keeps the CRDs: removing them would delete every Gateway
# and route in the cluster (they go with the cluster).
# Vars: CRDS_SOURCE, CRDS_VERSION.

main() {
    local logfile
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    [[ $CRDS_SOURCE == - || $CRDS_SOURCE =~ ^https?://[^[:space:]]+$ ]] || die "CRDS_SOURCE '$CRDS_SOURCE' is neither an http(s) URL nor -"
    logfile=$(open_private_log gateway-api.log)
    log "applying the Gateway API $CRDS_VERSION CRDs from ${CRDS_SOURCE/#-/stdin}"
    if ! kubectl_admin apply --server-side --force-conflicts -f "$CRDS_SOURCE" >>"$logfile" 2>&1; then
        show_log_tail "$logfile"
        if [[ $CRDS_SOURCE != - ]]; then
            die "could not apply the Gateway API CRDs from $CRDS_SOURCE (see above); offline, download the file where Pulumi runs and set addons.ingress.gatewayApi.crds to its path"
        fi
        die "could not apply the Gateway API CRDs (see above)"
    fi
    kubectl_admin wait --for condition=Established --timeout=60s \
        crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io >>"$logfile" 2>&1 ||
        die "the Gateway API CRDs were applied but are not served after 60s (see $logfile)"
    say "Gateway API $CRDS_VERSION CRDs are served"
}

kp_step main "$@"
