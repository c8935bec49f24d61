package main

// The kubeadm stand-in: validates configs strictly, checks the PKI and host
// preconditions kubeadm's preflight checks, and writes the files kubeadm
// init/join leave behind (stand-in contents), then restarts the kubelet.

import (
	"bufio"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	fakeToken      = "abcdef.0123456789abcdef"
	corednsTag     = "v1.14.2"
	etcdTag        = "3.6.8-0"
	defaultImgRepo = "registry.k8s.io"
	defaultPKI     = "/etc/kubernetes/pki"
)

var pkiFiles = []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key", "sa.key", "sa.pub"}

func kubeadmMain(args []string) int {
	if len(args) == 0 {
		errf("kubeadm (stand-in): no command given")
		return 1
	}
	switch args[0] {
	case "version":
		return kubeadmVersion(args[1:])
	case "config":
		if len(args) >= 2 && args[1] == "validate" {
			return kubeadmValidate(args[2:])
		}
		if len(args) >= 3 && args[1] == "images" && (args[2] == "list" || args[2] == "pull") {
			return kubeadmImages(args[2], args[3:])
		}
	case "init":
		return kubeadmInit(args[1:])
	case "join":
		return kubeadmJoin(args[1:])
	case "reset":
		return kubeadmReset(args[1:])
	}
	errf("kubeadm (stand-in): command %q is not implemented by the stand-in", strings.Join(args, " "))
	return 1
}

// flagSet is a tiny parser: --name value, --name=value, boolean flags.
type flagSet struct {
	values map[string]string
	bools  map[string]bool
	args   []string
}

func parseFlags(args []string, valued []string, boolean []string) (*flagSet, error) {
	fs := &flagSet{values: map[string]string{}, bools: map[string]bool{}}
	isVal, isBool := map[string]bool{}, map[string]bool{}
	for _, v := range valued {
		isVal[v] = true
	}
	for _, b := range boolean {
		isBool[b] = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			fs.args = append(fs.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case isVal[name]:
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: %s", a)
				}
				val = args[i+1]
				i++
			}
			fs.values[name] = val
		case isBool[name]:
			fs.bools[name] = !hasVal || val == "true"
		case name == "v" || name == "verbosity":
			if !hasVal && i+1 < len(args) {
				i++
			}
		default:
			return nil, fmt.Errorf("unknown flag: %s", a)
		}
	}
	return fs, nil
}

func kubeadmVersion(args []string) int {
	fs, err := parseFlags(args, []string{"o", "output"}, nil)
	if err != nil {
		errf("%v", err)
		return 1
	}
	v := "v" + version("kubeadm")
	out := fs.values["o"] + fs.values["output"]
	switch out {
	case "short":
		fmt.Println(v)
	case "json":
		b, _ := json.Marshal(map[string]any{"clientVersion": map[string]string{"gitVersion": v, "platform": "linux/amd64", "standin": "kubeadm-pulumi tests, not the real kubeadm"}})
		fmt.Println(string(b))
	case "":
		fmt.Printf("kubeadm version: &version.Info{GitVersion:%q, Platform:\"linux/amd64\"} (STAND-IN for kubeadm-pulumi tests, not the real kubeadm)\n", v)
	default:
		errf("error: invalid output format: %s", out)
		return 1
	}
	return 0
}

func kubeadmValidate(args []string) int {
	fs, err := parseFlags(args, []string{"config", "allow-experimental-api"}, nil)
	if err != nil {
		errf("%v", err)
		return 1
	}
	path := fs.values["config"]
	if path == "" {
		errf("the --config flag is mandatory")
		return 1
	}
	if _, err := loadKubeadmConfig(path); err != nil {
		errf("%v", err)
		notes("invalid config: %v", err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

// ------------------------------------------------------------------ images

// pauseTags mirrors the real kubeadm's PauseVersion per minor (read from the
// real kubeadm v1.36.4 and the v1.35.4 sources; see tests/engine/README.md),
// so the prepare step's pause-image check is exercised against real values.
var pauseTags = map[string]string{"v1.35": "3.10.1", "v1.36": "3.10.2", "v1.37": "3.10.2"}

func pauseTagFor(kv string) string {
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) >= 2 {
		if t, ok := pauseTags[parts[0]+"."+parts[1]]; ok {
			return t
		}
	}
	return "3.10.2"
}

func imagesFor(kv, repo string) []string {
	if repo == "" {
		repo = defaultImgRepo
	}
	pauseTag := pauseTagFor(kv)
	return []string{
		repo + "/kube-apiserver:" + kv,
		repo + "/kube-controller-manager:" + kv,
		repo + "/kube-scheduler:" + kv,
		repo + "/kube-proxy:" + kv,
		repo + "/coredns/coredns:" + corednsTag,
		repo + "/pause:" + pauseTag,
		repo + "/etcd:" + etcdTag,
	}
}

func kubeadmImages(verb string, args []string) int {
	fs, err := parseFlags(args, []string{"kubernetes-version", "image-repository", "cri-socket", "config", "feature-gates"}, nil)
	if err != nil {
		errf("%v", err)
		return 1
	}
	kv, repo := fs.values["kubernetes-version"], fs.values["image-repository"]
	if c := fs.values["config"]; c != "" {
		cfg, err := loadKubeadmConfig(c)
		if err != nil {
			errf("%v", err)
			return 1
		}
		if cfg.Cluster != nil {
			if kv == "" {
				kv = cfg.Cluster.KubernetesVersion
			}
			if repo == "" {
				repo = cfg.Cluster.ImageRepository
			}
		}
	}
	if kv == "" {
		kv = "v" + version("kubeadm")
	}
	if !k8sVerRe.MatchString(kv) {
		errf("invalid kubernetes version %q (the stand-in wants v1.X.Y)", kv)
		return 1
	}
	images := imagesFor(kv, repo)
	if verb == "list" {
		for _, i := range images {
			fmt.Println(i)
		}
		return 0
	}
	sock := fs.values["cri-socket"]
	if sock == "" {
		sock = "unix://" + defaultCRISocket
	}
	if err := criPing(sock); err != nil {
		errf("failed to create new CRI runtime service: %v", err)
		return 1
	}
	for _, i := range images {
		if err := imageAdd(i); err != nil {
			errf("failed to pull image %q: %v", i, err)
			return 1
		}
		fmt.Printf("[config/images] Pulled %s\n", i)
	}
	notes("pulled %d images into the stand-in image store (nothing downloaded)", len(images))
	return 0
}

// --------------------------------------------------------------- preflight

type preflight struct {
	ignore map[string]bool
	errs   []string
}

func newPreflight(fromConfig []string, fromFlag string) *preflight {
	p := &preflight{ignore: map[string]bool{}}
	for _, s := range append(fromConfig, strings.Split(fromFlag, ",")...) {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
			p.ignore[s] = true
		}
	}
	return p
}

func (p *preflight) fail(name, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if p.ignore["all"] || p.ignore[strings.ToLower(name)] {
		fmt.Printf("\t[WARNING %s]: %s\n", name, msg)
		return
	}
	p.errs = append(p.errs, fmt.Sprintf("\t[ERROR %s]: %s", name, msg))
}

func (p *preflight) done() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("error execution phase preflight: [preflight] Some fatal errors occurred:\n%s\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`", strings.Join(p.errs, "\n"))
}

// commonChecks: the host checks init and join share.
func (p *preflight) commonChecks(criSocket string) {
	if os.Getuid() != 0 && !testRoot() {
		p.fail("IsPrivilegedUser", "user is not running as root")
	}
	if criSocket == "" {
		criSocket = "unix://" + defaultCRISocket
	}
	if err := criPing(criSocket); err != nil {
		p.fail("CRI", "could not connect to the container runtime: %v", err)
	}
	if !testRoot() {
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(b)) != "1" {
			p.fail("FileContent--proc-sys-net-ipv4-ip_forward", "/proc/sys/net/ipv4/ip_forward contents are not set to 1")
		}
	}
	if os.Getenv("KP_STANDIN_NO_SYSTEMCTL") != "1" {
		if systemctlQuiet("is-enabled", "kubelet") != nil {
			fmt.Println("\t[WARNING Service-Kubelet]: kubelet service is not enabled, please run 'systemctl enable kubelet.service'")
		}
	}
}

func (p *preflight) controlPlaneChecks(imgs []string) {
	if es := dirEntries("/etc/kubernetes/manifests"); len(es) > 0 {
		p.fail("DirAvailable--etc-kubernetes-manifests", "/etc/kubernetes/manifests is not empty")
	}
	if es := dirEntries("/var/lib/etcd"); len(es) > 0 {
		p.fail("DirAvailable--var-lib-etcd", "/var/lib/etcd is not empty")
	}
	for _, i := range imgs {
		if !imagePresent(i) {
			p.fail("ImagePull", "failed to pull image %s: the STAND-IN cannot download images; it must have been pulled before (prepare step: kubeadm config images pull)", i)
		}
	}
}

// ---------------------------------------------------------------------- PKI

func readCert(abs string) (*x509.Certificate, error) {
	b, err := readConfig(abs)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", abs)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readKey(abs string) (crypto.Signer, error) {
	b, err := readConfig(abs)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", abs)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: unsupported PEM block %q", abs, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", abs, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", abs)
	}
	return s, nil
}

type equaler interface{ Equal(crypto.PublicKey) bool }

// checkPKI: every shared file exists, and each certificate/key (and the
// service-account key pair) match. Returns the cluster CA.
func checkPKI(dir string) (*x509.Certificate, error) {
	var missing []string
	for _, f := range pkiFiles {
		if !fileExists(filepath.Join(dir, f)) {
			missing = append(missing, filepath.Join(dir, f))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("error execution phase certs: the STAND-IN kubeadm requires the shared PKI the program provides; missing: %s", strings.Join(missing, ", "))
	}
	var ca *x509.Certificate
	for _, pair := range [][2]string{{"ca.crt", "ca.key"}, {"front-proxy-ca.crt", "front-proxy-ca.key"}, {"etcd/ca.crt", "etcd/ca.key"}} {
		cert, err := readCert(filepath.Join(dir, pair[0]))
		if err != nil {
			return nil, fmt.Errorf("failure loading %s certificate authority: %v", pair[0], err)
		}
		key, err := readKey(filepath.Join(dir, pair[1]))
		if err != nil {
			return nil, fmt.Errorf("failure loading %s: %v", pair[1], err)
		}
		if pub, ok := cert.PublicKey.(equaler); !ok || !pub.Equal(key.Public()) {
			return nil, fmt.Errorf("failure loading certificate authority %s: the certificate and %s do not match", filepath.Join(dir, pair[0]), pair[1])
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("certificate %s is not a CA", filepath.Join(dir, pair[0]))
		}
		if time.Now().After(cert.NotAfter) {
			return nil, fmt.Errorf("certificate %s has expired", filepath.Join(dir, pair[0]))
		}
		fmt.Printf("[certs] Using existing %s certificate authority\n", strings.TrimSuffix(pair[0], ".crt"))
		if ca == nil {
			ca = cert
		}
	}
	key, err := readKey(filepath.Join(dir, "sa.key"))
	if err != nil {
		return nil, err
	}
	pb, err := readConfig(filepath.Join(dir, "sa.pub"))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(pb)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", filepath.Join(dir, "sa.pub"))
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "sa.pub"), err)
	}
	if e, ok := pub.(equaler); !ok || !e.Equal(key.Public()) {
		return nil, fmt.Errorf("the service account keys %s and sa.pub do not match", filepath.Join(dir, "sa.key"))
	}
	fmt.Println(`[certs] Using the existing "sa" key`)
	return ca, nil
}

func caHash(ca *x509.Certificate) string {
	return "sha256:" + sha256Hex(ca.RawSubjectPublicKeyInfo)
}

// ------------------------------------------------------------ file writing

func kubeconfig(server, clusterName, user string, ca []byte) []byte {
	cluster := map[string]any{"server": server}
	if ca != nil {
		cluster["certificate-authority-data"] = base64.StdEncoding.EncodeToString(ca)
	}
	ctx := user + "@" + clusterName
	doc := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"clusters":        []any{map[string]any{"name": clusterName, "cluster": cluster}},
		"contexts":        []any{map[string]any{"name": ctx, "context": map[string]any{"cluster": clusterName, "user": user}}},
		"current-context": ctx,
		"users":           []any{map[string]any{"name": user, "user": map[string]any{"token": "STAND-IN-no-credential"}}},
	}
	b, _ := yaml.Marshal(doc)
	return append([]byte("# STAND-IN kubeconfig written by the kubeadm stand-in (kubeadm-pulumi tests); it holds no real credential.\n"), b...)
}

func manifest(name, image string, command []string) []byte {
	doc := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata": map[string]any{
			"name": name, "namespace": "kube-system",
			"labels":      map[string]string{"component": name, "tier": "control-plane"},
			"annotations": map[string]string{"kubeadm-pulumi.test/standin": "true"},
		},
		"spec": map[string]any{
			"hostNetwork": true,
			"containers":  []any{map[string]any{"name": name, "image": image, "command": command}},
		},
	}
	b, _ := yaml.Marshal(doc)
	return append([]byte("# STAND-IN static Pod manifest written by the kubeadm stand-in (kubeadm-pulumi tests): nothing runs it.\n"), b...)
}

func argList(bin string, base []string, extra []Arg) []string {
	out := []string{bin}
	out = append(out, base...)
	for _, a := range extra {
		out = append(out, "--"+a.Name+"="+a.Value)
	}
	return out
}

type cpParams struct {
	name, advertise, kv, repo string
	port                      int32
	cluster                   *ClusterConfiguration
}

func writeControlPlane(p cpParams) error {
	cc := p.cluster
	if cc == nil {
		cc = &ClusterConfiguration{}
	}
	files := map[string][]byte{
		"/etc/kubernetes/manifests/etcd.yaml": manifest("etcd", p.repo+"/etcd:"+etcdTag,
			argList("etcd", []string{"--name=" + p.name, "--data-dir=/var/lib/etcd", "--advertise-client-urls=https://" + hostPortStr(p.advertise, 2379)}, nil)),
		"/etc/kubernetes/manifests/kube-apiserver.yaml": manifest("kube-apiserver", p.repo+"/kube-apiserver:"+p.kv,
			argList("kube-apiserver", []string{"--advertise-address=" + p.advertise, "--secure-port=" + strconv.Itoa(int(p.port)), "--service-cluster-ip-range=" + cc.Networking.ServiceSubnet}, cc.APIServer.ExtraArgs)),
		"/etc/kubernetes/manifests/kube-controller-manager.yaml": manifest("kube-controller-manager", p.repo+"/kube-controller-manager:"+p.kv,
			argList("kube-controller-manager", []string{"--cluster-cidr=" + cc.Networking.PodSubnet, "--cluster-name=" + cc.ClusterName}, cc.ControllerManager.ExtraArgs)),
		"/etc/kubernetes/manifests/kube-scheduler.yaml": manifest("kube-scheduler", p.repo+"/kube-scheduler:"+p.kv,
			argList("kube-scheduler", nil, cc.Scheduler.ExtraArgs)),
	}
	for _, f := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		path := "/etc/kubernetes/manifests/" + f + ".yaml"
		if err := writeFile(path, 0o600, files[path]); err != nil {
			return err
		}
		if f == "etcd" {
			fmt.Printf("[etcd] Creating static Pod manifest for local etcd in \"/etc/kubernetes/manifests\"\n")
		} else {
			fmt.Printf("[control-plane] Creating static Pod manifest for %q\n", f)
		}
	}
	if err := os.MkdirAll(P("/var/lib/etcd"), 0o700); err != nil {
		return err
	}
	return writeFile("/var/lib/etcd/member/STANDIN", 0o600, []byte("STAND-IN: the etcd stand-in data of kubeadm-pulumi tests (no etcd runs)\n"))
}

func hostPortStr(h string, port int) string {
	return net.JoinHostPort(h, strconv.Itoa(port))
}

const defaultKubeletConfig = `# STAND-IN kubelet config (real kubeadm join downloads it from the cluster's kubelet-config ConfigMap)
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`

// startKubelet writes the kubelet's config and flags, restarts it and waits
// until the kubelet stand-in reports ready (like kubeadm's kubelet-check).
func startKubelet(kubeletYAML []byte, reg NodeRegistrationOptions, timeout time.Duration) error {
	if kubeletYAML == nil {
		kubeletYAML = []byte(defaultKubeletConfig)
	}
	fmt.Println(`[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"`)
	if err := writeFile("/var/lib/kubelet/config.yaml", 0o644, kubeletYAML); err != nil {
		return err
	}
	flags := []string{"--container-runtime-endpoint=" + orDefault(reg.CRISocket, "unix://"+defaultCRISocket)}
	if reg.Name != "" {
		flags = append(flags, "--hostname-override="+reg.Name)
	}
	for _, a := range reg.KubeletExtraArgs {
		flags = append(flags, "--"+a.Name+"="+a.Value)
	}
	fmt.Println(`[kubelet-start] Writing kubelet environment file with flags to file "/var/lib/kubelet/kubeadm-flags.env"`)
	if err := writeFile("/var/lib/kubelet/kubeadm-flags.env", 0o644, []byte(fmt.Sprintf("KUBELET_KUBEADM_ARGS=%q\n", strings.Join(flags, " ")))); err != nil {
		return err
	}
	fmt.Println("[kubelet-start] Starting the kubelet")
	if err := systemctl("restart", "kubelet"); err != nil {
		return fmt.Errorf("couldn't restart the kubelet: %v", err)
	}
	fmt.Printf("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to %v\n", timeout)
	start := time.Now()
	for !kubeletRunning() {
		if time.Since(start) > timeout {
			return errors.New("[kubelet-check] The kubelet is not healthy after " + timeout.String() + "\n\nUnfortunately, an error has occurred, likely caused by:\n\t- The kubelet is not running\n\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)\n\nIf you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:\n\t- 'systemctl status kubelet'\n\t- 'journalctl -xeu kubelet'")
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Printf("[kubelet-check] The kubelet is healthy after %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func kubeletWait() time.Duration {
	if s := os.Getenv("KP_STANDIN_KUBELET_WAIT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 60 * time.Second
}

// saveNode records a node object in the stand-in API store (on this host).
func saveNode(name string, obj map[string]any) {
	b, _ := json.MarshalIndent(obj, "", "  ")
	_ = os.MkdirAll(P(stateDir+"/api/nodes"), 0o700)
	_ = writeFile(stateDir+"/api/nodes/"+name+".json", 0o600, append(b, '\n'))
}

// ---------------------------------------------------------------------- init

func kubeadmInit(args []string) int {
	fs, _, cfg, ok := configCommand("init", args, "skip-token-print", "skip-certificate-key-print", "upload-certs", "dry-run")
	if !ok {
		return 1
	}
	if cfg.Join != nil {
		fmt.Fprintln(os.Stderr, "W0000 [config] WARNING: Ignored configuration document with GroupVersionKind kubeadm.k8s.io/v1beta4, Kind=JoinConfiguration")
	}
	init := cfg.Init
	if init == nil {
		init = &InitConfiguration{}
	}
	cc := cfg.Cluster
	if cc == nil {
		cc = &ClusterConfiguration{}
	}
	own := "v" + version("kubeadm")
	kv := orDefault(cc.KubernetesVersion, own)
	repo := orDefault(cc.ImageRepository, defaultImgRepo)
	fmt.Printf("[init] Using Kubernetes version: %s\n", kv)
	note("kubernetes_version", kv)

	fmt.Println("[preflight] Running pre-flight checks")
	pf := newPreflight(init.NodeRegistration.IgnorePreflightErrors, fs.values["ignore-preflight-errors"])
	if !sameMinorOrPrevious(kv, own) {
		pf.fail("KubernetesVersion", "this version of kubeadm (%s) supports control plane versions of its own minor and the one before; %s was requested", own, kv)
	}
	pf.commonChecks(init.NodeRegistration.CRISocket)
	fmt.Println("[preflight] Pulling images required for setting up a Kubernetes cluster")
	pf.controlPlaneChecks(imagesFor(kv, repo))
	if err := pf.done(); err != nil {
		errf("%v", err)
		notes("preflight failed")
		return 1
	}
	certDir := orDefault(cc.CertificatesDir, defaultPKI)
	fmt.Printf("[certs] Using certificateDir folder %q\n", certDir)
	ca, err := checkPKI(certDir)
	if err != nil {
		errf("%v", err)
		return 1
	}
	note("ca_cert_hash", caHash(ca))
	caPEM, _ := os.ReadFile(P(filepath.Join(certDir, "ca.crt")))

	name := orDefault(init.NodeRegistration.Name, hostname())
	adv := init.LocalAPIEndpoint.AdvertiseAddress
	if adv == "" {
		adv = "127.0.0.1"
	}
	port := init.LocalAPIEndpoint.BindPort
	if port == 0 {
		port = 6443
	}
	local := "https://" + hostPortStr(adv, int(port))
	server := local
	if cc.ControlPlaneEndpoint != "" {
		server = "https://" + cc.ControlPlaneEndpoint
	}
	clusterName := orDefault(cc.ClusterName, "kubernetes")
	fmt.Println(`[kubeconfig] Using kubeconfig folder "/etc/kubernetes"`)
	for _, k := range []struct{ file, user, server string }{
		{"admin.conf", "kubernetes-admin", server},
		{"super-admin.conf", "kubernetes-super-admin", server},
		{"kubelet.conf", "system:node:" + name, server},
		{"controller-manager.conf", "system:kube-controller-manager", local},
		{"scheduler.conf", "system:kube-scheduler", local},
	} {
		fmt.Printf("[kubeconfig] Writing %q kubeconfig file\n", k.file)
		if err := writeFile("/etc/kubernetes/"+k.file, 0o600, kubeconfig(k.server, clusterName, k.user, caPEM)); err != nil {
			errf("error writing %s: %v", k.file, err)
			return 1
		}
	}
	if err := writeControlPlane(cpParams{name: name, advertise: adv, kv: kv, repo: repo, port: port, cluster: cc}); err != nil {
		errf("error writing the control plane: %v", err)
		return 1
	}
	if err := startKubelet(cfg.KubeletYAML, init.NodeRegistration, kubeletWait()); err != nil {
		errf("error execution phase wait-control-plane: %v", err)
		return 1
	}
	fmt.Println("[control-plane-check] kube-apiserver is healthy (STAND-IN: no API server runs)")
	fmt.Println("[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace")
	taints := []Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}
	if init.NodeRegistration.Taints != nil {
		taints = *init.NodeRegistration.Taints
	}
	fmt.Printf("[mark-control-plane] Marking the node %s as control-plane by adding the labels: [node-role.kubernetes.io/control-plane node.kubernetes.io/exclude-from-external-load-balancers]\n", name)
	fmt.Printf("[mark-control-plane] Marking the node %s as control-plane by adding the taints %v\n", name, taints)
	saveNode(name, map[string]any{"name": name, "role": "control-plane", "via": "kubeadm init", "taints": taints,
		"kubeletExtraArgs": init.NodeRegistration.KubeletExtraArgs, "time": time.Now().UTC().Format(time.RFC3339)})
	// Real kubeadm always creates a bootstrap token at init (SetDefaults adds
	// one when the configuration lists none): stored like kubectl apply stores
	// one, without the program's node label, so that the program must delete it.
	def, _ := json.MarshalIndent(map[string]any{
		"name": "bootstrap-token-abcdef", "namespace": "kube-system", "type": "bootstrap.kubernetes.io/token", "labels": map[string]string{},
		"token-id": "abcdef", "token-secret-sha256": sha256Hex([]byte("0123456789abcdef")), "expiration": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"description": "The default bootstrap token generated by 'kubeadm init'.", "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
		"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true", "via": "kubeadm init",
	}, "", "  ")
	_ = writeFile(stateDir+"/api/secrets/kube-system/bootstrap-token-abcdef", 0o600, append(def, '\n'))
	if fs.bools["skip-token-print"] {
		fmt.Println("[bootstrap-token] Using token: <value withheld>")
	} else {
		fmt.Printf("[bootstrap-token] Using token: %s\n", fakeToken)
	}
	fmt.Println("[addons] Applied essential addon: CoreDNS (STAND-IN: nothing applied)")
	fmt.Println("[addons] Applied essential addon: kube-proxy (STAND-IN: nothing applied)")
	fmt.Println("\nYour Kubernetes control-plane has initialized successfully! (STAND-IN kubeadm: no cluster really runs)")
	tok := fakeToken
	if fs.bools["skip-token-print"] {
		tok = "<value withheld>"
	}
	fmt.Printf("\nThen you can join any number of worker nodes by running the following on each as root:\n\nkubeadm join %s --token %s \\\n\t--discovery-token-ca-cert-hash %s\n", strings.TrimPrefix(server, "https://"), tok, caHash(ca))
	return 0
}

func sameMinorOrPrevious(kv, own string) bool {
	minor := func(v string) int {
		parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
		if len(parts) < 2 {
			return -1
		}
		n, _ := strconv.Atoi(parts[1])
		return n
	}
	a, b := minor(kv), minor(own)
	return a == b || a == b-1
}

func hostname() string {
	h, _ := os.Hostname()
	return strings.ToLower(h)
}

// ---------------------------------------------------------------------- join

// configCommand parses the flags of `kubeadm init|join`, which the stand-in
// supports only with --config (as the scripts call them), and loads that
// config. It reports the problem itself; ok is false when the command must fail.
func configCommand(cmd string, args []string, boolean ...string) (fs *flagSet, path string, cfg *kubeadmConfig, ok bool) {
	fs, err := parseFlags(args, []string{"config", "ignore-preflight-errors", "skip-phases"}, boolean)
	if err != nil {
		errf("%v", err)
		return nil, "", nil, false
	}
	if len(fs.args) > 0 {
		errf("kubeadm %s (stand-in): only --config is supported, got arguments %q", cmd, fs.args)
		return nil, "", nil, false
	}
	path = fs.values["config"]
	if path == "" {
		errf("kubeadm %s (stand-in): --config is required (the scripts always pass one)", cmd)
		return nil, "", nil, false
	}
	if cfg, err = loadKubeadmConfig(path); err != nil {
		errf("%v", err)
		return nil, "", nil, false
	}
	return fs, path, cfg, true
}

func kubeadmJoin(args []string) int {
	fs, path, cfg, ok := configCommand("join", args, "dry-run")
	if !ok {
		return 1
	}
	j := cfg.Join
	if j == nil {
		errf("no JoinConfiguration found in %s", path)
		return 1
	}
	bt := j.Discovery.BootstrapToken
	if bt == nil || bt.Token == "" {
		errf("kubeadm join (stand-in): discovery.bootstrapToken.token is required")
		return 1
	}
	cp := j.ControlPlane != nil
	note("control_plane", cp)
	note("api_server_endpoint", bt.APIServerEndpoint)
	fmt.Println("[preflight] Running pre-flight checks")
	pf := newPreflight(j.NodeRegistration.IgnorePreflightErrors, fs.values["ignore-preflight-errors"])
	pf.commonChecks(j.NodeRegistration.CRISocket)
	if fileExists("/etc/kubernetes/kubelet.conf") {
		pf.fail("FileAvailable--etc-kubernetes-kubelet.conf", "/etc/kubernetes/kubelet.conf already exists")
	}
	own := "v" + version("kubeadm")
	if cp {
		pf.controlPlaneChecks(imagesFor(own, defaultImgRepo))
	} else if fileExists(defaultPKI + "/ca.crt") {
		pf.fail("FileAvailable--etc-kubernetes-pki-ca.crt", "/etc/kubernetes/pki/ca.crt already exists")
	}
	if err := pf.done(); err != nil {
		errf("%v", err)
		notes("preflight failed")
		return 1
	}
	fmt.Printf("[discovery] STAND-IN: not contacting %s (there is no API server); token and CA hashes were checked for shape only\n", bt.APIServerEndpoint)
	name := orDefault(j.NodeRegistration.Name, hostname())
	server := "https://" + bt.APIServerEndpoint
	var caPEM []byte
	if cp {
		fmt.Println("[preflight] Running pre-flight checks before initializing the new control plane instance")
		ca, err := checkPKI(defaultPKI)
		if err != nil {
			errf("error execution phase control-plane-prepare/certs: %v", err)
			return 1
		}
		// The joining control plane has the cluster CA: the pinned hash must be its hash.
		h := caHash(ca)
		found := false
		for _, x := range bt.CACertHashes {
			found = found || x == h
		}
		if !found && !bt.UnsafeSkipCAVerification {
			errf("error execution phase preflight: couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"%s\" are pinned (the CA in %s/ca.crt does not match discovery.bootstrapToken.caCertHashes)", h, defaultPKI)
			return 1
		}
		caPEM, _ = os.ReadFile(P(defaultPKI + "/ca.crt"))
		adv := orDefault(j.ControlPlane.LocalAPIEndpoint.AdvertiseAddress, "127.0.0.1")
		port := j.ControlPlane.LocalAPIEndpoint.BindPort
		if port == 0 {
			port = 6443
		}
		local := "https://" + hostPortStr(adv, int(port))
		for _, k := range []struct{ file, user, server string }{
			{"admin.conf", "kubernetes-admin", server},
			{"controller-manager.conf", "system:kube-controller-manager", local},
			{"scheduler.conf", "system:kube-scheduler", local},
		} {
			fmt.Printf("[kubeconfig] Writing %q kubeconfig file\n", k.file)
			if err := writeFile("/etc/kubernetes/"+k.file, 0o600, kubeconfig(k.server, "kubernetes", k.user, caPEM)); err != nil {
				errf("error writing %s: %v", k.file, err)
				return 1
			}
		}
		if err := writeControlPlane(cpParams{name: name, advertise: adv, kv: own, repo: defaultImgRepo, port: port}); err != nil {
			errf("error writing the control plane: %v", err)
			return 1
		}
	}
	fmt.Println(`[kubelet-start] Writing kubelet configuration to file "/etc/kubernetes/kubelet.conf"`)
	if err := writeFile("/etc/kubernetes/kubelet.conf", 0o600, kubeconfig(server, "kubernetes", "system:node:"+name, caPEM)); err != nil {
		errf("error writing kubelet.conf: %v", err)
		return 1
	}
	if err := startKubelet(nil, j.NodeRegistration, kubeletWait()); err != nil {
		errf("error execution phase kubelet-start: %v", err)
		return 1
	}
	fmt.Println("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap (STAND-IN: skipped)")
	if cp {
		fmt.Println("\nThis node has joined the cluster and a new control plane instance was created (STAND-IN kubeadm)")
	} else {
		fmt.Println("\nThis node has joined the cluster (STAND-IN kubeadm: no API server was contacted)")
	}
	return 0
}

// --------------------------------------------------------------------- reset

func kubeadmReset(args []string) int {
	fs, err := parseFlags(args, []string{"cri-socket", "config", "cert-dir", "ignore-preflight-errors", "kubeconfig", "skip-phases"},
		[]string{"f", "force", "cleanup-tmp-dir", "dry-run"})
	if err != nil {
		errf("%v", err)
		return 1
	}
	certDir := orDefault(fs.values["cert-dir"], defaultPKI)
	if c := fs.values["config"]; c != "" {
		cfg, err := loadKubeadmConfig(c)
		if err != nil {
			errf("%v", err)
			return 1
		}
		if cfg.Reset != nil && cfg.Reset.Force {
			fs.bools["force"] = true
		}
	}
	if !fs.bools["f"] && !fs.bools["force"] {
		fmt.Print("[reset] Are you sure you want to proceed? [y/N]: ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.ToLower(strings.TrimSpace(line)) != "y" {
			errf("aborted reset operation")
			return 1
		}
	}
	fmt.Println("[preflight] Running pre-flight checks")
	if dirEntries("/etc/kubernetes/manifests") != nil {
		fmt.Println("[reset] Deleted contents of the etcd data directory: /var/lib/etcd")
	}
	removeContents("/var/lib/etcd")
	fmt.Println("[reset] Stopping the kubelet service")
	if err := systemctl("stop", "kubelet"); err != nil {
		fmt.Fprintf(os.Stderr, "W0000 [reset] Failed to stop the kubelet service: %v\n", err)
	}
	fmt.Println(`[reset] Unmounting mounted directories in "/var/lib/kubelet"`)
	sock := orDefault(fs.values["cri-socket"], "unix://"+defaultCRISocket)
	if err := criPing(sock); err != nil {
		fmt.Fprintf(os.Stderr, "W0000 [reset] Failed to remove containers: %v\n", err)
	} else {
		fmt.Println("[reset] Removing all containers (STAND-IN: there are none)")
	}
	dirs := []string{"/etc/kubernetes/manifests", "/var/lib/kubelet", certDir}
	fmt.Printf("[reset] Deleting contents of directories: %v\n", dirs)
	removeContents("/etc/kubernetes/manifests")
	removeContents("/var/lib/kubelet")
	_ = os.RemoveAll(P(certDir))
	var files []string
	for _, f := range []string{"admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf", "controller-manager.conf", "scheduler.conf"} {
		files = append(files, "/etc/kubernetes/"+f)
	}
	fmt.Printf("[reset] Deleting files: %v\n", files)
	for _, f := range files {
		_ = os.Remove(P(f))
	}
	fmt.Print(`
The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d

The reset process does not reset or clean up iptables rules or IPVS tables.
If you wish to reset iptables, you must do so manually by using the "iptables" command.

If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)
to reset your system's IPVS tables.

The reset process does not clean your kubeconfig files and you must remove them manually.
Please, check the contents of the $HOME/.kube/config file.
`)
	return 0
}

// removeContents deletes everything inside a directory, keeping the directory.
func removeContents(abs string) {
	for _, e := range dirEntries(abs) {
		_ = os.RemoveAll(filepath.Join(P(abs), e))
	}
}
