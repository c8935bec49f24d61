# shellcheck shell=bash
# smoke-test: on the first control plane, once the pod network and the
# add-ons are installed, prove the cluster works: a pod on every node (an
# agnhost netexec DaemonSet that tolerates every taint), a Service and an
# Ingress route to them, then a Job that checks cluster DNS, pod-to-pod
# reachability to every pod (so across nodes), the Service by its DNS name,
# the Ingress route on every ingress node, and the dashboard's route; then the
# metrics API lists every node. Everything runs in a namespace of its own that
# is deleted again whatever happened. One line per check; the step fails
# listing every failed check.
# Vars: NODES, SMOKE_IMAGE, DNS_DOMAIN, INGRESS_CLASS, INGRESS_TARGETS (addr:port items),
# DASHBOARD_HOST (empty: no dashboard), CHECK_METRICS, CHECKED (what is
# being checked, versions included: the step runs again when it changes).

readonly SMOKE_LABEL=kubeadm-pulumi.io/smoke-test
readonly SMOKE_TIMEOUT=300

SMOKE_NS=''
SMOKE_RESULTS=()
SMOKE_FAILED=0

smoke_ok() { SMOKE_RESULTS+=("ok: $*"); }
smoke_fail() {
    SMOKE_RESULTS+=("FAILED: $*")
    SMOKE_FAILED=$((SMOKE_FAILED + 1))
}

smoke_cleanup() {
    [[ -n $SMOKE_NS ]] || return 0
    kubectl_admin delete namespace "$SMOKE_NS" --wait=false >/dev/null 2>&1 ||
        warn "could not delete namespace $SMOKE_NS; delete it by hand"
}

# Why pods are not running, in one line: each pod's phase, reason and
# waiting container state, the namespace's warning events (image pulls,
# scheduling, kubelet admission), and every node condition that is not as it
# should be (NotReady, DiskPressure, MemoryPressure, PIDPressure, ...): a
# kubelet that rejects pods under disk pressure looks Ready otherwise.
smoke_why() {
    local selector=${1:-} pods events conditions
    pods=$(kubectl_admin -n "$SMOKE_NS" get pods ${selector:+-l "$selector"} -o jsonpath='{range .items[*]}{.metadata.name} on {.spec.nodeName}: {.status.phase} {.status.reason} {.status.message}{range .status.containerStatuses[*]} {.state.waiting.reason} {.state.waiting.message}{end}{"\n"}{end}' 2>&1 | sort -u | tail -n 8 | tr -s ' \n' ' ;' || true)
    events=$(kubectl_admin -n "$SMOKE_NS" get events --field-selector type=Warning -o jsonpath='{range .items[*]}{.involvedObject.name}: {.reason}: {.message}{"\n"}{end}' 2>&1 | sort -u | tail -n 3 | tr -s ' \n' ' ;' || true)
    conditions=$(kubectl_admin get nodes -o jsonpath='{range .items[*]}{range .status.conditions[*]}{.type}={.status} {end}@{.metadata.name}{"\n"}{end}' 2>&1 |
        awk '{ node = $NF; sub(/^@/, "", node); for (i = 1; i < NF; i++) { split($i, c, "="); if ((c[1] == "Ready") != (c[2] == "True")) bad = bad node ": " c[1] "=" c[2] "; " } } END { printf "%s", bad }' || true)
    printf 'pods: %s events: %s nodes: %s' "${pods:-none}" "${events:-none}" "${conditions:-all Ready, no pressure}"
}

# The workload: one netexec pod per node, a Service, and an Ingress route when there is an ingress.
smoke_manifest() {
    cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $SMOKE_NS
  labels:
    $SMOKE_LABEL: "true"
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: echo
  namespace: $SMOKE_NS
spec:
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      tolerations: [{operator: Exists}]
      terminationGracePeriodSeconds: 1
      containers:
      - name: netexec
        image: $SMOKE_IMAGE
        args: ["netexec", "--http-port=8080"]
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /readyz, port: 8080}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: $SMOKE_NS
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
EOF
    if ((${#INGRESS_TARGETS[@]} > 0)); then
        cat <<EOF
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: echo
  namespace: $SMOKE_NS
spec:
  ingressClassName: $INGRESS_CLASS
  rules:
  - host: $SMOKE_NS.smoke.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: echo
            port: {number: 80}
EOF
    fi
}

# The checks the Job runs, in busybox sh (the agnhost image is alpine-based).
# (`timeout N wget`, not wget's own -T: busybox 1.35's wget crashes with -T.)
smoke_job_script() {
    cat <<'EOF'
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
if nslookup "kubernetes.default.svc.$DNS_DOMAIN" >/tmp/dns 2>&1; then ok "cluster DNS resolves kubernetes.default.svc.$DNS_DOMAIN"; else bad "cluster DNS: nslookup kubernetes.default.svc.$DNS_DOMAIN: $(tail -n 2 /tmp/dns | tr '\n' ' ')"; fi
for p in $PODS; do
  node=${p%%=*}; ip=${p#*=}
  if out=$(timeout 5 wget -q -O- "http://$ip:8080/hostname" 2>&1); then ok "pod to pod: reached the pod on $node ($ip)"; else bad "pod to pod: the pod on $node ($ip) did not answer: $out"; fi
done
svc="echo.$NAMESPACE.svc.$DNS_DOMAIN"
if out=$(timeout 5 wget -q -O- "http://$svc/hostname" 2>&1); then ok "service: $svc answered (pod $out)"; else bad "service: $svc: $out"; fi
for t in $INGRESS; do
  if out=$(timeout 5 wget -q -O- --header "Host: $NAMESPACE.smoke.test" "http://$t/hostname" 2>&1); then ok "ingress: the route on $t answered (pod $out)"; else bad "ingress: the route on $t: $out"; fi
  if [ -n "$DASHBOARD" ]; then
    if out=$(timeout 10 wget -q -O /dev/null --header "Host: $DASHBOARD" "http://$t/" 2>&1); then ok "dashboard: $DASHBOARD answers through $t"; else bad "dashboard: $DASHBOARD through $t: $out"; fi
  fi
done
exit "$failed"
EOF
}

smoke_job() {
    local pods=$1 script
    script=$(smoke_job_script | sed 's/^/          /')
    cat <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: check
  namespace: $SMOKE_NS
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 180
  template:
    spec:
      restartPolicy: Never
      tolerations: [{operator: Exists}]
      containers:
      - name: check
        image: $SMOKE_IMAGE
        command: ["/bin/sh", "-c"]
        args:
        - |
$script
        env:
        - {name: NAMESPACE, value: "$SMOKE_NS"}
        - {name: DNS_DOMAIN, value: "$DNS_DOMAIN"}
        - {name: PODS, value: "$pods"}
        - {name: INGRESS, value: "${INGRESS_TARGETS[*]}"}
        - {name: DASHBOARD, value: "$DASHBOARD_HOST"}
EOF
}

smoke_metrics() {
    local deadline=$((SECONDS + 180)) out='' count=0 want=${#NODES[@]} node
    while :; do
        # (NodeMetricsList items carry no kind: count the listed node names)
        if out=$(kubectl_admin get nodes.metrics.k8s.io -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>&1); then
            count=0
            for node in "${NODES[@]}"; do
                if grep -qxF -- "$node" <<<"$out"; then count=$((count + 1)); fi
            done
            ((count < want)) || break
        fi
        if ((SECONDS >= deadline)); then
            smoke_fail "metrics: the metrics API lists $count of $want nodes after 180s (${out:0:200}); see 'kubectl -n kube-system logs deploy/metrics-server'"
            return 0
        fi
        sleep 5
    done
    smoke_ok "metrics: the metrics API lists all $want nodes"
}

main() {
    local node line pods='' state deadline logs
    [[ -f $KP_ADMIN_CONF ]] || die "$KP_ADMIN_CONF is missing: this host is not an initialised control plane"
    api_answers 60 || die "the API server does not answer; the smoke test needs it"
    log "smoke test of: $CHECKED"
    # Leftovers of an interrupted run.
    kubectl_admin delete namespace -l "$SMOKE_LABEL" --wait=false >/dev/null 2>&1 || true
    SMOKE_NS=kubeadm-pulumi-smoke-$(date +%s)

    if ! smoke_manifest | kubectl_admin apply -f - >&2; then
        smoke_cleanup
        die "could not create the smoke-test workload (see above)"
    fi
    log "waiting (at most ${SMOKE_TIMEOUT}s) for a smoke-test pod on each of ${#NODES[@]} nodes"
    if ! timeout $((SMOKE_TIMEOUT + 30)) kubectl --kubeconfig "$KP_ADMIN_CONF" -n "$SMOKE_NS" rollout status daemonset/echo --timeout="${SMOKE_TIMEOUT}s" >&2; then
        smoke_fail "pods: the smoke-test DaemonSet did not become ready within ${SMOKE_TIMEOUT}s: $(smoke_why app=echo)"
    fi
    for node in "${NODES[@]}"; do
        line=$(kubectl_admin -n "$SMOKE_NS" get pods -l app=echo --field-selector "spec.nodeName=$node,status.phase=Running" \
            -o jsonpath='{.items[0].status.podIP}' 2>/dev/null || true)
        if [[ -n $line ]]; then
            smoke_ok "pods: a pod runs on $node ($line)"
            pods+="${pods:+ }$node=$line"
        else
            smoke_fail "pods: no running smoke-test pod on $node (is the node Ready? 'kubectl describe node $node')"
        fi
    done

    if [[ -n $pods ]]; then
        if ! smoke_job "$pods" | kubectl_admin apply -f - >/dev/null; then
            smoke_fail "could not create the checking Job"
        else
            deadline=$((SECONDS + 240))
            state=''
            while ((SECONDS < deadline)); do
                state=$(kubectl_admin -n "$SMOKE_NS" get job check -o jsonpath='{.status.succeeded}/{.status.failed}' 2>/dev/null || true)
                [[ $state == 1/* || $state == */1 ]] && break
                sleep 3
            done
            logs=$(kubectl_admin -n "$SMOKE_NS" logs job/check 2>&1 || true)
            while IFS= read -r line; do
                case $line in
                "ok: "*) smoke_ok "${line#ok: }" ;;
                "FAILED: "*) smoke_fail "${line#FAILED: }" ;;
                esac
            done <<<"$logs"
            if [[ $state != 1/* && $state != */1 ]]; then
                smoke_fail "the checking Job did not finish within 240s: $(smoke_why job-name=check)"
            elif [[ $state == */1 ]] && ! grep -q '^FAILED: ' <<<"$logs"; then
                smoke_fail "the checking Job failed: ${logs:0:400}"
            fi
        fi
    fi
    if [[ $CHECK_METRICS == true ]]; then
        smoke_metrics
    fi
    smoke_cleanup

    printf '%s\n' "${SMOKE_RESULTS[@]}" >&2
    if ((SMOKE_FAILED > 0)); then
        die "smoke test: $SMOKE_FAILED of ${#SMOKE_RESULTS[@]} checks failed: $(printf '%s; ' "${SMOKE_RESULTS[@]}" | grep -o 'FAILED: [^;]*' | tr '\n' ';')"
    fi
    say "smoke test passed: ${#SMOKE_RESULTS[@]} checks ($CHECKED)"
}

kp_step main "$@"
