#!/usr/bin/env bash
# Self-test of the stand-ins on this machine, without sandbox hosts: builds
# them (build.sh), then runs the binary through symlinks in a temp dir with
# KP_STANDIN_ROOT (every path prefixed, no interfaces/firewall touched) and a
# fake `systemctl` on PATH that runs the kubelet stand-in in the background.
# Configs come from the program's own renderers (components/kubeadm/config.ts,
# components/containerd.ts). Exit 0 when every check passes.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../../.." && pwd)
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

pass=0 fail=0
ok() {
    pass=$((pass + 1))
    echo "ok   $*"
}
bad() {
    fail=$((fail + 1))
    echo "FAIL $*"
}
# expect_ok NAME CMD...: CMD must succeed.  expect_fail NAME PATTERN CMD...: fail, stderr matching PATTERN.
expect_ok() {
    local name=$1
    shift
    if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; else
        bad "$name (exit $?)"
        sed 's/^/     | /' "$T/err" | head -20
    fi
}
expect_fail() {
    local name=$1 pattern=$2
    shift 2
    if "$@" >"$T/out" 2>"$T/err"; then
        bad "$name (succeeded, expected a failure)"
    elif grep -qE -- "$pattern" "$T/err"; then
        ok "$name -> $(grep -m1 -oE -- "$pattern" "$T/err")"
    else
        bad "$name (failed, but stderr lacks /$pattern/)"
        sed 's/^/     | /' "$T/err" | head -20
    fi
}

"$here/build.sh" >/dev/null || {
    echo "FAIL build.sh"
    exit 1
}
bin=${STANDINS_CACHE_DIR:-$repo_root/.cache/standins}/bin/standin

T=$(mktemp -d /tmp/standins-selftest.XXXXXX)
R=$T/root
mkdir -p "$R/run" "$R/var" "$T/bin" "$R/cfg"
ln -s ../run "$R/var/run"
cleanup() {
    local p
    for p in "$T"/systemd/*.pid "$T"/containerd.pid; do
        [[ -f $p ]] && kill "$(cat "$p")" 2>/dev/null
    done
    sleep 0.3
    [[ -n ${KEEP:-} ]] || rm -rf -- "$T"
}
trap cleanup EXIT
for t in kubeadm kubelet kubectl crictl containerd; do ln -s "$bin" "$T/bin/$t"; done
export KP_STANDIN_ROOT=$R KUBERNETES_VERSION=1.36.4 CONTAINERD_VERSION=2.2.6 KP_STANDIN_KUBELET_WAIT=15s
export SELFTEST_DIR=$T PATH=$T/bin:$PATH

# Fake systemctl: is-enabled says yes; start/restart/stop/is-active manage
# the kubelet stand-in as a background process (flags from kubeadm-flags.env).
cat >"$T/bin/systemctl" <<'EOF'
#!/usr/bin/env bash
state=$SELFTEST_DIR/systemd
mkdir -p "$state"
args=()
for a in "$@"; do [[ $a == --quiet || $a == -q ]] || args+=("$a"); done
verb=${args[0]} unit=${args[1]%.service}
echo "$verb $unit" >>"$state/calls"
pidf=$state/$unit.pid
alive() { [[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
stop() {
    if alive; then
        kill "$(cat "$pidf")"
        for _ in $(seq 50); do alive || break; sleep 0.1; done
    fi
    rm -f "$pidf"
}
case $verb in
is-enabled) exit 0 ;;
is-active) alive ;;
stop) stop ;;
start | restart)
    stop
    KUBELET_KUBEADM_ARGS=
    [[ ! -f $KP_STANDIN_ROOT/var/lib/kubelet/kubeadm-flags.env ]] || . "$KP_STANDIN_ROOT/var/lib/kubelet/kubeadm-flags.env"
    # shellcheck disable=SC2086
    setsid "$SELFTEST_DIR/bin/$unit" --config=/var/lib/kubelet/config.yaml $KUBELET_KUBEADM_ARGS >>"$state/$unit.out" 2>&1 </dev/null &
    echo $! >"$pidf"
    ;;
*) echo "fake systemctl: $verb not handled" >&2; exit 1 ;;
esac
EOF
chmod +x "$T/bin/systemctl"

echo "# rendering configs with the program's renderers"
(cd "$repo_root" && npx ts-node --transpile-only -e '
const fs = require("fs");
const {parseClusterConfig} = require("./components/config");
const {renderInitConfig, renderJoinConfig, discoverySection, controlPlaneEndpoint} = require("./components/kubeadm/config");
const {renderContainerdConfig} = require("./components/containerd");
const out = process.argv[1];
const raw = {
  hosts: [
    {name: "cp-1", address: "192.0.2.10", internalAddress: "10.0.0.10", roles: ["control-plane"]},
    {name: "cp-2", address: "192.0.2.11", internalAddress: "10.0.0.11", roles: ["control-plane"]},
    {name: "worker-1", address: "192.0.2.12", internalAddress: "10.0.0.12", roles: ["worker"]},
  ],
  ssh: {user: "ubuntu", privateKey: require("crypto").generateKeyPairSync("ed25519").privateKey.export({type: "pkcs8", format: "pem"})},
  kubernetesVersion: "1.36.4",
  network: {podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/12", cni: "flannel"},
};
const spec = parseClusterConfig(raw, "selftest");
const hash = fs.readFileSync(out + "/cahash", "utf8").trim();
fs.writeFileSync(out + "/init.yaml", renderInitConfig(spec, spec.hosts[0]));
// as the join script writes them: the rendered JoinConfiguration, then the discovery section
const token = "k7x2p9.q4w8e1r5t6y3u0i2";
fs.writeFileSync(out + "/join-worker.yaml", renderJoinConfig(spec, spec.hosts[2], false));
fs.writeFileSync(out + "/join-worker-tok.yaml", renderJoinConfig(spec, spec.hosts[2], false) + discoverySection(controlPlaneEndpoint(spec), token, hash));
fs.writeFileSync(out + "/join-cp-tok.yaml", renderJoinConfig(spec, spec.hosts[1], true) + discoverySection(controlPlaneEndpoint(spec), token, hash));
fs.writeFileSync(out + "/containerd.toml", renderContainerdConfig({pauseImage: "registry.k8s.io/pause:3.10.1"}));
' "$R/cfg" 2>/dev/null) &
render_pid=$!

# PKI like the program's: ECDSA CAs, RSA service-account key.
pki=$T/pki
mkdir -p "$pki/etcd"
mkca() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$1.key" 2>/dev/null
    openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -out "$pki/$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
mkca ca kubernetes
mkca front-proxy-ca front-proxy-ca
mkca etcd/ca etcd-ca
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
echo "sha256:$(openssl x509 -in "$pki/ca.crt" -noout -pubkey | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)" >"$R/cfg/cahash"
wait "$render_pid" || {
    echo "FAIL rendering configs with ts-node"
    exit 1
}
C=$R/cfg  # the tools see it as /cfg (KP_STANDIN_ROOT)

echo "# kubeadm: version and config validate"
[[ $(kubeadm version -o short) == v1.36.4 ]] && ok "kubeadm version -o short = v1.36.4" || bad "kubeadm version -o short"
expect_ok "validate accepts the rendered InitConfiguration+ClusterConfiguration+Kubelet+KubeProxy" kubeadm config validate --config "/cfg/init.yaml"
sed 's/^controllerManager: {}/controllerManager: {}\nextraArgz: []/; s/^  certSANs:/  certSANz:/' "$C/init.yaml" >"$C/unknown.yaml"
expect_fail "validate rejects an unknown field" 'unknown field "apiServer.certSANz"' kubeadm config validate --config "/cfg/unknown.yaml"
sed 's/^    - name: node-ip$/    - name: node-ip/; s/^  imagePullPolicy: IfNotPresent/  imagePullPolicy: IfNotPresent\n  kubeletExtraArgz: 1/' "$C/init.yaml" >"$C/unknown2.yaml"
expect_fail "validate rejects a misspelled nodeRegistration field" 'unknown field "nodeRegistration.kubeletExtraArgz"' kubeadm config validate --config "/cfg/unknown2.yaml"
sed 's/^scheduler: {}/scheduler:\n  extraArgs:\n    bind-address: 0.0.0.0/' "$C/init.yaml" >"$C/v1beta3map.yaml"
expect_fail "validate rejects v1beta3-style map extraArgs" 'cannot unmarshal object into Go struct field scheduler.extraArgs' kubeadm config validate --config "/cfg/v1beta3map.yaml"
sed 's#kubeadm.k8s.io/v1beta4#kubeadm.k8s.io/v1beta3#' "$C/init.yaml" >"$C/v1beta3.yaml"
expect_fail "validate rejects apiVersion v1beta3" 'no kind "InitConfiguration" is registered' kubeadm config validate --config "/cfg/v1beta3.yaml"
sed 's/cgroupDriver: systemd/cgroupDriver: cgroupfs/' "$C/init.yaml" >"$C/cgroupfs.yaml"
expect_fail "validate rejects kubelet cgroupDriver cgroupfs" 'cgroupDriver' kubeadm config validate --config "/cfg/cgroupfs.yaml"
sed 's/kubernetesVersion: v1.36.4/kubernetesVersion: 1.36.4/' "$C/init.yaml" >"$C/kv.yaml"
expect_fail "validate rejects kubernetesVersion without v" 'kubernetesVersion' kubeadm config validate --config "/cfg/kv.yaml"
expect_fail "validate rejects a join config without the discovery section the join script adds" 'bootstrapToken or file must be set' kubeadm config validate --config "/cfg/join-worker.yaml"
token=k7x2p9.q4w8e1r5t6y3u0i2
expect_ok "validate accepts the rendered worker JoinConfiguration with a token" kubeadm config validate --config "/cfg/join-worker-tok.yaml"
expect_ok "validate accepts the rendered control-plane JoinConfiguration with a token" kubeadm config validate --config "/cfg/join-cp-tok.yaml"
sed 's/sha256:\([0-9a-f]*\)/sha256:XYZ/' "$C/join-worker-tok.yaml" >"$C/badhash.yaml"
expect_fail "validate rejects a malformed caCertHash" 'caCertHashes\[0\]' kubeadm config validate --config "/cfg/badhash.yaml"
sed "s/$token/ABCDEF.0123456789abcdef/" "$C/join-worker-tok.yaml" >"$C/badtoken.yaml"
expect_fail "validate rejects a malformed token" 'bootstrap token is invalid' kubeadm config validate --config "/cfg/badtoken.yaml"
if grep -q "$token" "$R/var/log/kubeadm-pulumi-standins/kubeadm.log"; then bad "kubeadm log contains a token"; else ok "kubeadm log holds no token (files logged by sha256)"; fi

echo "# containerd and crictl"
mkdir -p "$R/etc/containerd"
dpkg-deb --fsys-tarfile "$(ls "${bin%/bin/standin}"/repo/containerd.io_*.deb)" | tar -xO ./etc/containerd/config.toml >"$R/etc/containerd/config.toml"
expect_fail "containerd refuses the config Docker's containerd.io ships" 'disables the CRI plugin' timeout 10 containerd
printf 'version = 2\n' >"$R/etc/containerd/config.toml"
expect_fail "containerd refuses config version 2" 'requires `version = 3`' timeout 10 containerd
sed 's/SystemdCgroup = true/SystemdCgroup = false/' "$C/containerd.toml" >"$R/etc/containerd/config.toml"
expect_fail "containerd refuses SystemdCgroup = false" 'SystemdCgroup must be true' timeout 10 containerd
expect_fail "crictl info fails without containerd" 'validate service connection' crictl --runtime-endpoint unix:///run/containerd/containerd.sock info
cp "$C/containerd.toml" "$R/etc/containerd/config.toml"
setsid containerd >"$T/containerd.out" 2>&1 </dev/null &
echo $! >"$T/containerd.pid"
for _ in $(seq 50); do [[ -S $R/run/containerd/containerd.sock ]] && break; sleep 0.1; done
[[ -S $R/run/containerd/containerd.sock ]] && ok "containerd accepts the renderContainerdConfig output and listens" || {
    bad "containerd did not start"
    cat "$T/containerd.out"
}
grep -q '"sandbox_image":"registry.k8s.io/pause:3.10.1"' "$R/var/log/kubeadm-pulumi-standins/containerd.log" && ok "containerd logged the sandbox image" || bad "containerd sandbox image log"
expect_ok "crictl info succeeds (--runtime-endpoint before the command)" crictl --runtime-endpoint unix:///run/containerd/containerd.sock info
expect_ok "crictl info succeeds (--runtime-endpoint after, via /var/run)" crictl info --runtime-endpoint unix:///var/run/containerd/containerd.sock
expect_fail "crictl inspecti fails for an absent image" 'no such image' crictl --runtime-endpoint unix:///run/containerd/containerd.sock inspecti -q registry.k8s.io/pause:3.10.1
expect_ok "crictl pull" crictl --runtime-endpoint unix:///run/containerd/containerd.sock pull registry.k8s.io/pause:3.10.1
expect_ok "crictl inspecti finds the pulled image" crictl --runtime-endpoint unix:///run/containerd/containerd.sock inspecti -q registry.k8s.io/pause:3.10.1
list=$(kubeadm config images list --kubernetes-version v1.36.4 --image-repository registry.k8s.io)
[[ $(wc -l <<<"$list") == 7 && $list == *registry.k8s.io/pause:3.10.2* && $list == *registry.k8s.io/kube-apiserver:v1.36.4* ]] && ok "kubeadm config images list (7 images)" || bad "kubeadm config images list: $list"

echo "# kubelet, kubeadm init"
expect_fail "kubelet exits 1 without /var/lib/kubelet/config.yaml" 'failed to load kubelet config file' kubelet
mkdir -p "$R/etc/kubernetes/pki"
cp -r "$pki/." "$R/etc/kubernetes/pki/"
expect_fail "init preflight: images not pulled" 'ImagePull' kubeadm init --config "/cfg/init.yaml" --skip-token-print --skip-certificate-key-print
expect_ok "kubeadm config images pull" kubeadm config images pull --kubernetes-version v1.36.4 --image-repository registry.k8s.io --cri-socket unix:///run/containerd/containerd.sock
cp "$R/etc/kubernetes/pki/front-proxy-ca.key" "$T/fp.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$R/etc/kubernetes/pki/front-proxy-ca.key" 2>/dev/null
expect_fail "init rejects a CA whose key does not match" 'do not match' kubeadm init --config "/cfg/init.yaml" --skip-token-print
cp "$T/fp.key" "$R/etc/kubernetes/pki/front-proxy-ca.key"
mkdir -p "$R/etc/kubernetes/manifests" && touch "$R/etc/kubernetes/manifests/leftover.yaml"
expect_fail "init preflight: non-empty /etc/kubernetes/manifests" 'DirAvailable--etc-kubernetes-manifests' kubeadm init --config "/cfg/init.yaml"
rm "$R/etc/kubernetes/manifests/leftover.yaml"
if kubeadm init --config "/cfg/init.yaml" --skip-token-print --skip-certificate-key-print >"$T/init.out" 2>&1; then
    ok "kubeadm init with the rendered config"
else
    bad "kubeadm init"
    sed 's/^/     | /' "$T/init.out"
fi
grep -q 'abcdef.0123456789abcdef' "$T/init.out" && bad "init printed a token despite --skip-token-print" || ok "init withholds the token with --skip-token-print"
missing=
for f in admin.conf super-admin.conf kubelet.conf controller-manager.conf scheduler.conf manifests/etcd.yaml manifests/kube-apiserver.yaml \
    manifests/kube-controller-manager.yaml manifests/kube-scheduler.yaml; do
    [[ -f $R/etc/kubernetes/$f ]] || missing+=" $f"
done
for f in /var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env /var/lib/etcd/member/STANDIN /etc/cni/net.d/10-standin.conflist /var/lib/cni/standin; do
    [[ -f $R$f ]] || missing+=" $f"
done
[[ -z $missing ]] && ok "init wrote kubeconfigs, manifests, kubelet config, etcd data; kubelet simulated CNI files" || bad "missing after init:$missing"
grep -q -- '--node-ip=10.0.0.10' "$T/systemd/kubelet.out" "$R/var/lib/kubelet/kubeadm-flags.env" && ok "kubelet got --node-ip from kubeletExtraArgs" || bad "kubelet flags"
grep -q '"flags":\[.*--node-ip=10.0.0.10' "$R/var/log/kubeadm-pulumi-standins/kubelet.log" && ok "kubelet log records its flags" || bad "kubelet log flags"
expect_fail "a second init fails preflight (manifests present)" 'DirAvailable' kubeadm init --config "/cfg/init.yaml" --skip-token-print
if kubeadm init --config "/cfg/init.yaml" --ignore-preflight-errors=all >"$T/init2.out" 2>&1 && grep -q 'abcdef.0123456789abcdef' "$T/init2.out"; then
    ok "init without --skip-token-print prints the fake token"
else bad "init without --skip-token-print"; fi

echo "# kubectl"
K=(kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=10s)
expect_fail "kubectl without a kubeconfig" 'localhost:8080 was refused' kubectl --kubeconfig /nonexistent get --raw=/readyz
expect_ok "kubectl get --raw=/readyz (with --server)" "${K[@]}" --server https://10.0.0.10:6443 get --raw=/readyz
[[ $(cat "$T/out") == ok ]] && ok "readyz prints ok" || bad "readyz output: $(cat "$T/out")"
manifest() { # ID SECRET EXPIRATION [NAME]
    printf '%s\n' 'apiVersion: v1' 'kind: Secret' 'metadata:' "  name: ${4:-bootstrap-token-$1}" '  namespace: kube-system' '  labels:' \
        '    app.kubernetes.io/managed-by: kubeadm-pulumi' 'type: bootstrap.kubernetes.io/token' 'stringData:' \
        '  description: "kubeadm-pulumi join of worker-1"' "  token-id: \"$1\"" "  token-secret: \"$2\"" "  expiration: \"$3\"" \
        '  usage-bootstrap-authentication: "true"' '  usage-bootstrap-signing: "true"' '  auth-extra-groups: "system:bootstrappers:kubeadm:default-node-token"'
}
future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
past=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
manifest k7x2p9 q4w8e1r5t6y3u0i2 "$future" >"$T/good.yaml"
expect_ok "apply --server-side accepts a good bootstrap token Secret" "${K[@]}" apply --server-side --force-conflicts --field-manager=kubeadm-pulumi -f - <"$T/good.yaml"
[[ $(cat "$T/out") == "secret/bootstrap-token-k7x2p9 serverside-applied" ]] && ok "apply prints serverside-applied" || bad "apply output: $(cat "$T/out")"
stored=$R/var/lib/kubeadm-pulumi-standins/api/secrets/kube-system/bootstrap-token-k7x2p9
if [[ -f $stored ]] && ! grep -q q4w8e1r5t6y3u0i2 "$stored" && grep -q "$(printf q4w8e1r5t6y3u0i2 | sha256sum | cut -d' ' -f1)" "$stored"; then
    ok "stored Secret holds the sha256 of the token secret, not the secret"
else bad "stored secret $stored"; fi
expect_fail "apply without --server-side is refused" 'client-side apply' "${K[@]}" apply -f - <"$T/good.yaml"
manifest k7x2p9 q4w8e1r5t6y3u0i2 "$past" >"$T/bad1.yaml"
expect_fail "apply rejects an expired token" 'not in the future' "${K[@]}" apply --server-side -f - <"$T/bad1.yaml"
manifest k7x2p9 q4w8e1r5t6y3u0i2 "$future" bootstrap-token-zzzzzz >"$T/bad2.yaml"
expect_fail "apply rejects a name that does not match token-id" 'must be bootstrap-token-k7x2p9' "${K[@]}" apply --server-side -f - <"$T/bad2.yaml"
manifest k7x2p9 SHORT "$future" >"$T/bad3.yaml"
expect_fail "apply rejects a malformed token secret" 'token-secret must be 16' "${K[@]}" apply --server-side -f - <"$T/bad3.yaml"
sed 's/namespace: kube-system/namespace: default/' "$T/good.yaml" >"$T/bad4.yaml"
expect_fail "apply rejects a namespace other than kube-system" 'kube-system' "${K[@]}" apply --server-side -f - <"$T/bad4.yaml"
expect_ok "get node NAME -o name" "${K[@]}" get node worker-1 -o name
[[ $(cat "$T/out") == node/worker-1 ]] && ok "get node prints node/worker-1" || bad "get node output"
expect_ok "label node --overwrite" "${K[@]}" label node worker-1 --overwrite tier=web node-role.kubernetes.io/worker=
expect_fail "label rejects a bad label" 'invalid label' "${K[@]}" label node worker-1 --overwrite 'bad label'
expect_ok "drain" kubectl --kubeconfig /etc/kubernetes/admin.conf drain worker-1 --ignore-daemonsets --delete-emptydir-data --force --timeout=60s
expect_ok "delete secret" "${K[@]}" -n kube-system delete secret bootstrap-token-k7x2p9 --ignore-not-found
[[ ! -e $stored ]] && ok "the secret file is gone" || bad "secret file still there"
expect_ok "delete secret again with --ignore-not-found" "${K[@]}" -n kube-system delete secret bootstrap-token-k7x2p9 --ignore-not-found
expect_fail "delete secret again without --ignore-not-found" 'NotFound' "${K[@]}" -n kube-system delete secret bootstrap-token-k7x2p9
expect_ok "delete node --ignore-not-found" "${K[@]}" delete node worker-1 --ignore-not-found
[[ -f $R/var/lib/kubeadm-pulumi-standins/api/nodes/worker-1.labels && -f $R/var/lib/kubeadm-pulumi-standins/api/nodes/worker-1.drained && -f $R/var/lib/kubeadm-pulumi-standins/api/nodes/worker-1.deleted ]] &&
    ok "node label/drain/delete recorded under api/nodes" || bad "api/nodes records"

echo "# kubeadm reset"
expect_ok "kubeadm reset -f" kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock
grep -q 'does not clean CNI configuration' "$T/out" && ok "reset prints the CNI/iptables/kubeconfig note" || bad "reset note"
left=$(cd "$R" && ls etc/kubernetes/*.conf etc/kubernetes/manifests/* etc/kubernetes/pki var/lib/kubelet/* var/lib/etcd/* 2>/dev/null)
[[ -z $left ]] && ok "reset removed kubeconfigs, manifests, pki, kubelet and etcd state" || bad "reset left: $left"
[[ -d $R/var/lib/kubelet && -f $R/etc/cni/net.d/10-standin.conflist ]] && ok "reset kept /var/lib/kubelet itself and the CNI config (like the real one)" || bad "reset removed too much"
[[ ! -f $T/systemd/kubelet.pid ]] && ok "reset stopped the kubelet" || bad "kubelet still running after reset"
expect_ok "kubeadm reset -f again (nothing there)" kubeadm reset -f
expect_fail "kubectl readyz fails after reset" 'refused' "${K[@]}" get --raw=/readyz

echo "# kubeadm join"
mkdir -p "$R/etc/kubernetes/pki" && cp -r "$pki/." "$R/etc/kubernetes/pki/"
expect_fail "worker join preflight: pki/ca.crt already present" 'FileAvailable--etc-kubernetes-pki-ca.crt' kubeadm join --config "/cfg/join-worker-tok.yaml"
expect_ok "control-plane join with the rendered config (CA hash matches)" kubeadm join --config "/cfg/join-cp-tok.yaml"
kubeadm reset -f >/dev/null 2>&1
sed "s/sha256:[0-9a-f]*/sha256:$(printf '0%.0s' $(seq 64))/" "$C/join-cp-tok.yaml" >"$C/join-cp-wronghash.yaml"
mkdir -p "$R/etc/kubernetes/pki" && cp -r "$pki/." "$R/etc/kubernetes/pki/"
expect_fail "control-plane join rejects a CA hash that is not the CA's" 'are pinned' kubeadm join --config "/cfg/join-cp-wronghash.yaml"
rm -rf "$R/etc/kubernetes/pki"
expect_ok "worker join with the rendered config" kubeadm join --config "/cfg/join-worker-tok.yaml"
[[ -f $R/etc/kubernetes/kubelet.conf && ! -f $R/etc/kubernetes/manifests/kube-apiserver.yaml ]] && ok "worker join wrote kubelet.conf and no manifests" || bad "worker join files"
expect_fail "join again: kubelet.conf exists" 'FileAvailable--etc-kubernetes-kubelet.conf' kubeadm join --config "/cfg/join-worker-tok.yaml"
kubeadm reset -f >/dev/null 2>&1

echo "# logs"
logs=$R/var/log/kubeadm-pulumi-standins
[[ $(stat -c %a "$logs") == 700 ]] && ok "log dir is 0700" || bad "log dir mode"
if grep -rqE "$token|q4w8e1r5t6y3u0i2|PRIVATE KEY" "$logs"; then bad "a secret reached the logs"; else ok "no token, token secret or key in any log"; fi
for t in kubeadm kubelet kubectl crictl containerd; do
    if [[ -s $logs/$t.log ]] && jq -e 'has("time") and has("argv") and has("uid") and has("files")' "$logs/$t.log" >/dev/null 2>&1; then
        ok "$t.log: $(wc -l <"$logs/$t.log") JSON line(s) with time/argv/uid/files"
    elif ! command -v jq >/dev/null; then
        [[ -s $logs/$t.log ]] && ok "$t.log present (jq not installed, shape not checked)" || bad "$t.log missing"
    else bad "$t.log shape"; fi
done
kubeadm version -o short "abcdef.0123456789abcdef" >/dev/null 2>&1
tail -n 1 "$logs/kubeadm.log" | grep -q '<redacted-token>' && ok "tokens in argv are masked in the log" || bad "argv token masking"

echo
echo "selftest: $pass passed, $fail failed ($(elapsed)s)"
((fail == 0))
