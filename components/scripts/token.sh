# shellcheck shell=bash
# token: on the first control plane, right before a node joins, create a
# bootstrap token (a Secret in kube-system) for exactly that join. stdin
# bundle: `token`. The Secret is labelled with the node's name: older tokens
# of the node (from a join that failed) are deleted first, node-ready deletes
# this one as soon as the node registered, forget-node when the node leaves.
# Prints one line on stdout (the token id and expiry, never the secret), which
# the node-ready step takes as its stdin, so that it runs again whenever this
# step ran.
# Vars: NODE_NAME, TOKEN_TTL_SECONDS.

main() {
    local bundle token id secret expiration manifest attempt
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    private_tmpdir
    bundle=$KP_TMPDIR/bundle
    read_bundle "$bundle"
    require_bundle_files "$bundle" token
    token=$(tr -d '\n' <"$bundle/token")
    [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "the bootstrap token on stdin is malformed (expected [a-z0-9]{6}.[a-z0-9]{16})"
    id=${token%%.*}
    secret=${token#*.}
    expiration=$(date -u -d "@$(($(date +%s) + TOKEN_TTL_SECONDS))" +%Y-%m-%dT%H:%M:%SZ)

    delete_node_tokens "$NODE_NAME" "$id"
    # The secret goes to kubectl on stdin (printf is a builtin), never on a
    # command line: /proc/*/cmdline is world-readable.
    manifest=$(printf '%s\n' \
        'apiVersion: v1' \
        'kind: Secret' \
        'metadata:' \
        "  name: bootstrap-token-$id" \
        '  namespace: kube-system' \
        '  labels:' \
        '    app.kubernetes.io/managed-by: kubeadm-pulumi' \
        "    $KP_TOKEN_NODE_LABEL: \"$NODE_NAME\"" \
        'type: bootstrap.kubernetes.io/token' \
        'stringData:' \
        "  description: \"kubeadm-pulumi join of $NODE_NAME\"" \
        "  token-id: \"$id\"" \
        "  token-secret: \"$secret\"" \
        "  expiration: \"$expiration\"" \
        '  usage-bootstrap-authentication: "true"' \
        '  usage-bootstrap-signing: "true"' \
        '  auth-extra-groups: "system:bootstrappers:kubeadm:default-node-token"')
    # Server-side apply: a client-side apply would copy the whole manifest,
    # token secret included, into the last-applied-configuration annotation.
    for attempt in 1 2 3 4 5; do
        if printf '%s\n' "$manifest" | kubectl_admin apply --server-side --force-conflicts --field-manager=kubeadm-pulumi -f - >/dev/null; then
            say "bootstrap token $id for $NODE_NAME valid until $expiration"
            return 0
        fi
        warn "kubectl apply of the bootstrap token failed (attempt $attempt of 5)"
        sleep 5
    done
    die "could not create the bootstrap token $id; is the API server on this host healthy?"
}

kp_step main "$@"
