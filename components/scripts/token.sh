# shellcheck shell=bash
# token: create or refresh a kubeadm bootstrap token (a Secret in kube-system)
# on the first control plane, before a join. stdin bundle: `token`.
# Vars: TOKEN_ID, TOKEN_TTL_SECONDS, NODE_NAME.

main() {
    local bundle token secret expiration manifest attempt
    [[ $TOKEN_ID =~ ^[a-z0-9]{6}$ ]] || die "TOKEN_ID '$TOKEN_ID' is not 6 characters of [a-z0-9]"
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    private_tmpdir
    bundle=$KP_TMPDIR/bundle
    read_bundle "$bundle"
    require_bundle_files "$bundle" token
    token=$(tr -d '\n' <"$bundle/token")
    [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "the bootstrap token on stdin is malformed (expected [a-z0-9]{6}.[a-z0-9]{16})"
    [[ ${token%%.*} == "$TOKEN_ID" ]] || die "the token on stdin does not have the id $TOKEN_ID"
    secret=${token#*.}
    expiration=$(date -u -d "@$(($(date +%s) + TOKEN_TTL_SECONDS))" +%Y-%m-%dT%H:%M:%SZ)

    # The secret goes to kubectl on stdin (printf is a builtin), never on a
    # command line: /proc/*/cmdline is world-readable.
    manifest=$(printf '%s\n' \
        'apiVersion: v1' \
        'kind: Secret' \
        'metadata:' \
        "  name: bootstrap-token-$TOKEN_ID" \
        '  namespace: kube-system' \
        '  labels:' \
        '    app.kubernetes.io/managed-by: kubeadm-pulumi' \
        'type: bootstrap.kubernetes.io/token' \
        'stringData:' \
        "  description: \"kubeadm-pulumi join of $NODE_NAME\"" \
        "  token-id: \"$TOKEN_ID\"" \
        "  token-secret: \"$secret\"" \
        "  expiration: \"$expiration\"" \
        '  usage-bootstrap-authentication: "true"' \
        '  usage-bootstrap-signing: "true"' \
        '  auth-extra-groups: "system:bootstrappers:kubeadm:default-node-token"')
    # Server-side apply: a client-side apply would copy the whole manifest,
    # token secret included, into the last-applied-configuration annotation.
    for attempt in 1 2 3 4 5; do
        if printf '%s\n' "$manifest" | kubectl_admin apply --server-side --force-conflicts --field-manager=kubeadm-pulumi -f - >/dev/null; then
            say "bootstrap token $TOKEN_ID for $NODE_NAME valid until $expiration"
            return 0
        fi
        warn "kubectl apply of the bootstrap token failed (attempt $attempt of 5)"
        sleep 5
    done
    die "could not create the bootstrap token $TOKEN_ID; is the API server on this host healthy?"
}

main "$@"
