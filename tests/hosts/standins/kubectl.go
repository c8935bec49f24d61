package main

// The kubectl stand-in. There is NO API server: "the API" is a directory on
// this host (/var/lib/kubeadm-pulumi-standins/api) and is "up" when the
// kube-apiserver manifest exists and the kubelet stand-in runs. Bootstrap
// token Secrets are validated like the API server + kubeadm would use them,
// and stored without their secret half.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const apiDir = stateDir + "/api"

var (
	tokenIDRe     = regexp.MustCompile(`^[a-z0-9]{6}$`)
	tokenSecretRe = regexp.MustCompile(`^[a-z0-9]{16}$`)
	nodeNameRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelRe       = regexp.MustCompile(`^([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)$`)
)

type kubectlOpts struct {
	kubeconfig, server, timeout, namespace string
	rest                                   []string
}

func kubectlMain(args []string) int {
	o := kubectlOpts{namespace: "default"}
	global := map[string]*string{"kubeconfig": &o.kubeconfig, "server": &o.server, "s": &o.server, "request-timeout": &o.timeout, "namespace": &o.namespace, "n": &o.namespace}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			name, val, has := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if p, ok := global[name]; ok {
				if !has {
					if i+1 >= len(args) {
						errf("error: flag needs an argument: %s", a)
						return 1
					}
					val = args[i+1]
					i++
				}
				*p = val
				continue
			}
		}
		o.rest = append(o.rest, a)
	}
	if len(o.rest) == 0 {
		errf("kubectl (stand-in): no command given")
		return 1
	}
	if o.rest[0] == "version" && contains(o.rest, "--client") {
		fmt.Printf("Client Version: v%s (STAND-IN kubectl for kubeadm-pulumi tests)\n", version("kubectl"))
		return 0
	}
	if o.timeout != "" {
		if _, err := time.ParseDuration(o.timeout); err != nil {
			errf("error: invalid argument %q for \"--request-timeout\" flag: %v", o.timeout, err)
			return 1
		}
	}
	if o.kubeconfig == "" {
		o.kubeconfig = os.Getenv("KUBECONFIG")
	}
	if o.kubeconfig == "" {
		home, _ := os.UserHomeDir()
		o.kubeconfig = filepath.Join(home, ".kube/config")
	}
	kc, err := readConfig(o.kubeconfig)
	if err != nil {
		errf("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
		notes("no kubeconfig at %s", o.kubeconfig)
		return 1
	}
	server, err := kubeconfigServer(kc)
	if err != nil {
		errf("error: error loading config file %q: %v", o.kubeconfig, err)
		return 1
	}
	if o.server != "" {
		u, err := url.Parse(o.server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			errf("error: invalid --server %q (the stand-in expects https://host:port)", o.server)
			return 1
		}
		server = o.server
	}
	note("server", server)
	if !apiUp() {
		errf("The connection to the server %s was refused - did you specify the right host or port?", strings.TrimPrefix(server, "https://"))
		notes("API down: needs /etc/kubernetes/manifests/kube-apiserver.yaml and a running kubelet stand-in")
		return 1
	}
	cmd, cargs := o.rest[0], o.rest[1:]
	switch cmd {
	case "get":
		return kubectlGet(o, cargs)
	case "apply":
		return kubectlApply(o, cargs)
	case "delete":
		return kubectlDelete(o, cargs)
	case "label":
		return kubectlLabel(cargs)
	case "drain":
		return kubectlDrain(cargs)
	case "taint":
		return kubectlTaint(cargs)
	}
	errf("kubectl (stand-in): command %q is not implemented", cmd)
	return 1
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func kubeconfigServer(b []byte) (string, error) {
	var kc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Clusters   []struct {
			Cluster struct {
				Server string `yaml:"server"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return "", err
	}
	if kc.Kind != "Config" || len(kc.Clusters) == 0 || kc.Clusters[0].Cluster.Server == "" {
		return "", fmt.Errorf("not a kubeconfig with a cluster server")
	}
	return kc.Clusters[0].Cluster.Server, nil
}

// apiUp: the stand-in API is "up" when the control plane manifest exists and the kubelet runs.
func apiUp() bool {
	return fileExists("/etc/kubernetes/manifests/kube-apiserver.yaml") && kubeletRunning()
}

func kubectlGet(o kubectlOpts, args []string) int {
	var raw, output, selector, fieldSelector string
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--raw="):
			raw = strings.TrimPrefix(a, "--raw=")
		case a == "--raw" && i+1 < len(args):
			raw = args[i+1]
			i++
		case a == "-o" && i+1 < len(args):
			output = args[i+1]
			i++
		case strings.HasPrefix(a, "-o=") || strings.HasPrefix(a, "--output="):
			_, output, _ = strings.Cut(a, "=")
		case (a == "-l" || a == "--selector") && i+1 < len(args):
			selector = args[i+1]
			i++
		case strings.HasPrefix(a, "-l=") || strings.HasPrefix(a, "--selector="):
			_, selector, _ = strings.Cut(a, "=")
		case a == "--field-selector" && i+1 < len(args):
			fieldSelector = args[i+1]
			i++
		case strings.HasPrefix(a, "--field-selector="):
			_, fieldSelector, _ = strings.Cut(a, "=")
		case strings.HasPrefix(a, "-"):
			errf("kubectl get (stand-in): unsupported flag %s", a)
			return 1
		default:
			pos = append(pos, a)
		}
	}
	if raw != "" {
		switch raw {
		case "/readyz", "/livez", "/healthz":
			fmt.Print("ok")
			return 0
		}
		errf("Error from server (NotFound): the server could not find the requested resource (STAND-IN serves only /readyz, /livez, /healthz)")
		return 1
	}
	if len(pos) == 1 && (pos[0] == "secret" || pos[0] == "secrets") && selector != "" && output == "name" {
		return listSecrets(o.namespace, selector, fieldSelector)
	}
	if len(pos) == 2 && (pos[0] == "node" || pos[0] == "nodes" || pos[0] == "no") {
		if !nodeNameRe.MatchString(pos[1]) {
			errf("error: invalid node name %q", pos[1])
			return 1
		}
		// STAND-IN: no registry of nodes exists on this host (nodes join
		// elsewhere), so every node "exists".
		notes("STAND-IN: node %s reported as existing (no real API)", pos[1])
		if output == "name" {
			fmt.Printf("node/%s\n", pos[1])
		} else {
			fmt.Printf("NAME   STATUS     ROLES    AGE   VERSION\n%s   NotReady   <none>   1m    v%s\n", pos[1], version("kubectl"))
		}
		return 0
	}
	errf("kubectl get (stand-in): only `get --raw=/readyz`, `get node NAME` and `get secrets -l k=v -o name` are implemented, got %q", pos)
	return 1
}

// listSecrets prints secret/<name> for every stored secret of the namespace
// whose labels match `k=v` and `!k` terms and, if given, whose type matches
// the field selector `type=T` (the only field the stand-in knows).
func listSecrets(namespace, selector, fieldSelector string) int {
	want, absent := map[string]string{}, map[string]bool{}
	for _, term := range strings.Split(selector, ",") {
		if k, ok := strings.CutPrefix(term, "!"); ok && labelKeyRe.MatchString(k) {
			absent[k] = true
			continue
		}
		k, v, ok := strings.Cut(term, "=")
		if !ok || !labelKeyRe.MatchString(k) {
			errf("error: the stand-in understands only k=v and !k selectors, got %q", selector)
			return 1
		}
		want[k] = v
	}
	wantType := ""
	if fieldSelector != "" {
		t, ok := strings.CutPrefix(fieldSelector, "type=")
		if !ok || strings.Contains(t, ",") {
			errf("error: the stand-in understands only the field selector type=T, got %q", fieldSelector)
			return 1
		}
		wantType = t
	}
	dir := P(apiDir + "/secrets/" + namespace)
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		errf("error: %v", err)
		return 1
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var rec struct {
			Labels map[string]string `json:"labels"`
			Type   string            `json:"type"`
		}
		if json.Unmarshal(b, &rec) != nil {
			continue
		}
		match := wantType == "" || rec.Type == wantType
		for k, v := range want {
			if rec.Labels[k] != v {
				match = false
			}
		}
		for k := range absent {
			if _, has := rec.Labels[k]; has {
				match = false
			}
		}
		if match {
			fmt.Printf("secret/%s\n", e.Name())
		}
	}
	return 0
}

func kubectlApply(o kubectlOpts, args []string) int {
	var file, manager string
	serverSide := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--server-side" || a == "--server-side=true":
			serverSide = true
		case a == "--force-conflicts" || a == "--force-conflicts=true":
		case a == "-f" || a == "--filename":
			if i+1 >= len(args) {
				errf("error: flag needs an argument: %s", a)
				return 1
			}
			file = args[i+1]
			i++
		case strings.HasPrefix(a, "--filename=") || strings.HasPrefix(a, "-f="):
			_, file, _ = strings.Cut(a, "=")
		case strings.HasPrefix(a, "--field-manager="):
			manager = strings.TrimPrefix(a, "--field-manager=")
		case a == "--field-manager" && i+1 < len(args):
			manager = args[i+1]
			i++
		default:
			errf("kubectl apply (stand-in): unsupported argument %s", a)
			return 1
		}
	}
	if !serverSide {
		errf("kubectl apply (stand-in): refusing a client-side apply: it would copy the whole manifest (a token secret included) into the last-applied-configuration annotation; use --server-side")
		return 1
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		note("stdin_sha256", sha256Hex(b))
	} else if file != "" {
		b, err = readConfig(file)
	} else {
		errf("error: must specify one of -f and -k")
		return 1
	}
	if err != nil {
		errf("error: %v", err)
		return 1
	}
	name, stored, err := validateTokenSecret(b)
	if err != nil {
		errf("error: %v", err)
		notes("rejected manifest: %v", err)
		return 1
	}
	stored["fieldManager"] = manager
	stored["appliedAt"] = time.Now().UTC().Format(time.RFC3339)
	out, _ := json.MarshalIndent(stored, "", "  ")
	if err := writeFile(apiDir+"/secrets/kube-system/"+name, 0o600, append(out, '\n')); err != nil {
		errf("error: cannot store the secret: %v", err)
		return 1
	}
	_ = os.Chmod(P(apiDir), 0o700)
	fmt.Printf("secret/%s serverside-applied\n", name)
	return 0
}

// validateTokenSecret checks a bootstrap token Secret and returns the record
// to store: every non-secret field plus the sha256 of the token secret.
func validateTokenSecret(b []byte) (string, map[string]any, error) {
	var s struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Namespace   string            `yaml:"namespace"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
		Data       map[string]string `yaml:"data"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return "", nil, fmt.Errorf("error parsing the manifest: %v", err)
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return "", nil, fmt.Errorf("the stand-in accepts exactly one document")
	}
	if s.APIVersion != "v1" || s.Kind != "Secret" {
		return "", nil, fmt.Errorf("the stand-in applies only v1 Secrets, got %s %s", s.APIVersion, s.Kind)
	}
	if s.Type != "bootstrap.kubernetes.io/token" {
		return "", nil, fmt.Errorf("secret type %q: want bootstrap.kubernetes.io/token", s.Type)
	}
	if s.Metadata.Namespace != "kube-system" {
		return "", nil, fmt.Errorf("bootstrap token secrets must be in namespace kube-system, got %q", s.Metadata.Namespace)
	}
	if len(s.Data) > 0 {
		return "", nil, fmt.Errorf("the stand-in expects stringData, not data")
	}
	if _, ok := s.Metadata.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok {
		return "", nil, fmt.Errorf("the manifest carries a last-applied-configuration annotation")
	}
	sd := s.StringData
	id, secret := sd["token-id"], sd["token-secret"]
	if !tokenIDRe.MatchString(id) {
		return "", nil, fmt.Errorf("stringData.token-id %q must be 6 characters of [a-z0-9]", id)
	}
	if s.Metadata.Name != "bootstrap-token-"+id {
		return "", nil, fmt.Errorf("metadata.name %q must be bootstrap-token-%s", s.Metadata.Name, id)
	}
	if !tokenSecretRe.MatchString(secret) {
		return "", nil, fmt.Errorf("stringData.token-secret must be 16 characters of [a-z0-9]")
	}
	exp, err := time.Parse(time.RFC3339, sd["expiration"])
	if err != nil {
		return "", nil, fmt.Errorf("stringData.expiration %q is not RFC3339", sd["expiration"])
	}
	if !exp.After(time.Now()) {
		return "", nil, fmt.Errorf("stringData.expiration %s is not in the future", sd["expiration"])
	}
	usages := 0
	for k, v := range sd {
		if strings.HasPrefix(k, "usage-bootstrap-") {
			if v != "true" {
				return "", nil, fmt.Errorf("stringData.%s must be \"true\" (or absent), got %q", k, v)
			}
			if k != "usage-bootstrap-authentication" && k != "usage-bootstrap-signing" {
				return "", nil, fmt.Errorf("unknown usage %s", k)
			}
			usages++
		}
	}
	if sd["usage-bootstrap-authentication"] != "true" {
		return "", nil, fmt.Errorf("stringData.usage-bootstrap-authentication must be \"true\" for a join token")
	}
	if g := sd["auth-extra-groups"]; g != "" {
		for _, x := range strings.Split(g, ",") {
			if !strings.HasPrefix(x, "system:bootstrappers:") {
				return "", nil, fmt.Errorf("auth-extra-groups %q: every group must start with system:bootstrappers:", x)
			}
		}
	}
	known := map[string]bool{"token-id": true, "token-secret": true, "expiration": true, "description": true, "auth-extra-groups": true, "usage-bootstrap-authentication": true, "usage-bootstrap-signing": true}
	var keys []string
	for k := range sd {
		if !known[k] {
			return "", nil, fmt.Errorf("unknown stringData key %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	stored := map[string]any{
		"name": s.Metadata.Name, "namespace": s.Metadata.Namespace, "type": s.Type, "labels": s.Metadata.Labels,
		"token-id": id, "token-secret-sha256": sha256Hex([]byte(secret)), "expiration": sd["expiration"],
		"description": sd["description"], "auth-extra-groups": sd["auth-extra-groups"],
		"usage-bootstrap-authentication": sd["usage-bootstrap-authentication"], "usage-bootstrap-signing": sd["usage-bootstrap-signing"],
		"stringDataKeys": keys,
	}
	return s.Metadata.Name, stored, nil
}

func kubectlDelete(o kubectlOpts, args []string) int {
	ignore := false
	var pos []string
	for _, a := range args {
		switch {
		case a == "--ignore-not-found" || a == "--ignore-not-found=true":
			ignore = true
		case strings.HasPrefix(a, "-"):
			errf("kubectl delete (stand-in): unsupported flag %s", a)
			return 1
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 1 && strings.Contains(pos[0], "/") {
		kind, name, _ := strings.Cut(pos[0], "/")
		pos = []string{kind, name}
	}
	if len(pos) != 2 {
		errf("kubectl delete (stand-in): expected KIND NAME or KIND/NAME, got %q", pos)
		return 1
	}
	kind, name := pos[0], pos[1]
	if !nodeNameRe.MatchString(name) || !nodeNameRe.MatchString(o.namespace) {
		errf("error: invalid name %q or namespace %q", name, o.namespace)
		return 1
	}
	switch kind {
	case "secret", "secrets":
		p := P(apiDir + "/secrets/" + o.namespace + "/" + name)
		if err := os.Remove(p); err != nil {
			if os.IsNotExist(err) {
				if ignore {
					return 0
				}
				errf("Error from server (NotFound): secrets %q not found", name)
				return 1
			}
			errf("error: %v", err)
			return 1
		}
		fmt.Printf("secret %q deleted\n", name)
		return 0
	case "node", "nodes", "no":
		// STAND-IN: nodes always "exist"; the deletion is recorded.
		if err := writeFile(apiDir+"/nodes/"+name+".deleted", 0o600, []byte(time.Now().UTC().Format(time.RFC3339)+"\n")); err != nil {
			errf("error: %v", err)
			return 1
		}
		fmt.Printf("node %q deleted\n", name)
		return 0
	}
	errf("kubectl delete (stand-in): kind %q is not implemented", kind)
	return 1
}

func kubectlLabel(args []string) int {
	overwrite := false
	var pos []string
	for _, a := range args {
		switch {
		case a == "--overwrite" || a == "--overwrite=true":
			overwrite = true
		case strings.HasPrefix(a, "-"):
			errf("kubectl label (stand-in): unsupported flag %s", a)
			return 1
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) < 3 || (pos[0] != "node" && pos[0] != "nodes" && pos[0] != "no") || !nodeNameRe.MatchString(pos[1]) {
		errf("kubectl label (stand-in): expected `label node NAME key=value...`, got %q", pos)
		return 1
	}
	name := pos[1]
	labels := map[string]string{}
	path := apiDir + "/nodes/" + name + ".labels"
	if b, err := os.ReadFile(P(path)); err == nil {
		_ = json.Unmarshal(b, &labels)
	}
	for _, l := range pos[2:] {
		if strings.HasSuffix(l, "-") && labelKeyRe.MatchString(strings.TrimSuffix(l, "-")) {
			delete(labels, strings.TrimSuffix(l, "-"))
			continue
		}
		m := labelRe.FindStringSubmatch(l)
		if m == nil || !labelKeyRe.MatchString(m[1]) || len(m[2]) > 63 {
			errf("error: invalid label spec: %s", l)
			return 1
		}
		if old, ok := labels[m[1]]; ok && old != m[2] && !overwrite {
			errf("error: 'overwrite' is false, cannot overwrite label %s (has value %s)", m[1], old)
			return 1
		}
		labels[m[1]] = m[2]
	}
	b, _ := json.MarshalIndent(labels, "", "  ")
	if err := writeFile(path, 0o600, append(b, '\n')); err != nil {
		errf("error: %v", err)
		return 1
	}
	fmt.Printf("node/%s labeled\n", name)
	return 0
}

func kubectlDrain(args []string) int {
	var pos, flags []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if strings.HasPrefix(a, "--timeout=") {
				if _, err := time.ParseDuration(strings.TrimPrefix(a, "--timeout=")); err != nil {
					errf("error: invalid --timeout %q", a)
					return 1
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	if len(pos) != 1 || !nodeNameRe.MatchString(pos[0]) {
		errf("kubectl drain (stand-in): expected exactly one node name, got %q", pos)
		return 1
	}
	b, _ := json.MarshalIndent(map[string]any{"time": time.Now().UTC().Format(time.RFC3339), "flags": flags}, "", "  ")
	if err := writeFile(apiDir+"/nodes/"+pos[0]+".drained", 0o600, append(b, '\n')); err != nil {
		errf("error: %v", err)
		return 1
	}
	fmt.Printf("node/%s cordoned\nnode/%s drained\n", pos[0], pos[0])
	return 0
}

var taintRe = regexp.MustCompile(`^([A-Za-z0-9./_-]+)(=([A-Za-z0-9._-]*))?:(NoSchedule|PreferNoSchedule|NoExecute)(-?)$`)

// kubectlTaint: `taint node NAME key[=value]:Effect [--overwrite]` adds or
// replaces a taint, `key:Effect-` removes it (NotFound when absent), as the
// real kubectl does; stored as nodes/NAME.taints (JSON map key:effect -> value).
func kubectlTaint(args []string) int {
	overwrite := false
	var pos []string
	for _, a := range args {
		switch {
		case a == "--overwrite" || a == "--overwrite=true":
			overwrite = true
		case strings.HasPrefix(a, "-"):
			errf("kubectl taint (stand-in): unsupported flag %s", a)
			return 1
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) < 3 || (pos[0] != "node" && pos[0] != "nodes" && pos[0] != "no") || !nodeNameRe.MatchString(pos[1]) {
		errf("kubectl taint (stand-in): expected `taint node NAME key[=value]:Effect[-]...`, got %q", pos)
		return 1
	}
	name := pos[1]
	taints := map[string]string{}
	path := apiDir + "/nodes/" + name + ".taints"
	if b, err := os.ReadFile(P(path)); err == nil {
		_ = json.Unmarshal(b, &taints)
	}
	for _, t := range pos[2:] {
		m := taintRe.FindStringSubmatch(t)
		if m == nil || !labelKeyRe.MatchString(m[1]) {
			errf("error: invalid taint spec: %s", t)
			return 1
		}
		id := m[1] + ":" + m[4]
		if m[5] == "-" {
			if _, ok := taints[id]; !ok {
				errf("error: taint %q not found", id)
				return 1
			}
			delete(taints, id)
			continue
		}
		if old, ok := taints[id]; ok && old != m[3] && !overwrite {
			errf("error: node %s already has %s taint(s) with same effect(s) and --overwrite is false", name, m[1])
			return 1
		}
		taints[id] = m[3]
	}
	b, _ := json.MarshalIndent(taints, "", "  ")
	if err := writeFile(path, 0o600, append(b, '\n')); err != nil {
		errf("error: %v", err)
		return 1
	}
	fmt.Printf("node/%s tainted\n", name)
	return 0
}
