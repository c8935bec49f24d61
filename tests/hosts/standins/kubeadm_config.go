package main

// kubeadm configuration: the v1beta4 types (field names from
// kubernetes/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go),
// decoded strictly like kubeadm does: an unknown field, a wrong shape (e.g. a
// v1beta3 map where v1beta4 has a list of {name, value}) or a duplicate field
// is an error.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const kubeadmAPI = "kubeadm.k8s.io/v1beta4"

type Arg struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type EnvVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom any    `yaml:"valueFrom"`
}

type HostPathMount struct {
	Name      string `yaml:"name"`
	HostPath  string `yaml:"hostPath"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
	PathType  string `yaml:"pathType"`
}

type Taint struct {
	Key       string `yaml:"key"`
	Value     string `yaml:"value"`
	Effect    string `yaml:"effect"`
	TimeAdded string `yaml:"timeAdded"`
}

type NodeRegistrationOptions struct {
	Name                  string   `yaml:"name"`
	CRISocket             string   `yaml:"criSocket"`
	Taints                *[]Taint `yaml:"taints"`
	KubeletExtraArgs      []Arg    `yaml:"kubeletExtraArgs"`
	IgnorePreflightErrors []string `yaml:"ignorePreflightErrors"`
	ImagePullPolicy       string   `yaml:"imagePullPolicy"`
	ImagePullSerial       *bool    `yaml:"imagePullSerial"`
}

type APIEndpoint struct {
	AdvertiseAddress string `yaml:"advertiseAddress"`
	BindPort         int32  `yaml:"bindPort"`
}

type BootstrapToken struct {
	Token       string   `yaml:"token"`
	Description string   `yaml:"description"`
	TTL         string   `yaml:"ttl"`
	Expires     string   `yaml:"expires"`
	Usages      []string `yaml:"usages"`
	Groups      []string `yaml:"groups"`
}

type Patches struct {
	Directory string `yaml:"directory"`
}

type Timeouts struct {
	ControlPlaneComponentHealthCheck string `yaml:"controlPlaneComponentHealthCheck"`
	KubeletHealthCheck               string `yaml:"kubeletHealthCheck"`
	KubernetesAPICall                string `yaml:"kubernetesAPICall"`
	EtcdAPICall                      string `yaml:"etcdAPICall"`
	TLSBootstrap                     string `yaml:"tlsBootstrap"`
	Discovery                        string `yaml:"discovery"`
	UpgradeManifests                 string `yaml:"upgradeManifests"`
}

type InitConfiguration struct {
	APIVersion       string                  `yaml:"apiVersion"`
	Kind             string                  `yaml:"kind"`
	BootstrapTokens  []BootstrapToken        `yaml:"bootstrapTokens"`
	DryRun           bool                    `yaml:"dryRun"`
	NodeRegistration NodeRegistrationOptions `yaml:"nodeRegistration"`
	LocalAPIEndpoint APIEndpoint             `yaml:"localAPIEndpoint"`
	CertificateKey   string                  `yaml:"certificateKey"`
	SkipPhases       []string                `yaml:"skipPhases"`
	Patches          *Patches                `yaml:"patches"`
	Timeouts         *Timeouts               `yaml:"timeouts"`
}

type ImageMeta struct {
	ImageRepository string `yaml:"imageRepository"`
	ImageTag        string `yaml:"imageTag"`
}

type LocalEtcd struct {
	ImageMeta      `yaml:",inline"`
	DataDir        string   `yaml:"dataDir"`
	ExtraArgs      []Arg    `yaml:"extraArgs"`
	ExtraEnvs      []EnvVar `yaml:"extraEnvs"`
	ServerCertSANs []string `yaml:"serverCertSANs"`
	PeerCertSANs   []string `yaml:"peerCertSANs"`
}

type ExternalEtcd struct {
	Endpoints []string `yaml:"endpoints"`
	CAFile    string   `yaml:"caFile"`
	CertFile  string   `yaml:"certFile"`
	KeyFile   string   `yaml:"keyFile"`
}

type Etcd struct {
	Local    *LocalEtcd    `yaml:"local"`
	External *ExternalEtcd `yaml:"external"`
}

type Networking struct {
	ServiceSubnet string `yaml:"serviceSubnet"`
	PodSubnet     string `yaml:"podSubnet"`
	DNSDomain     string `yaml:"dnsDomain"`
}

type ControlPlaneComponent struct {
	ExtraArgs    []Arg           `yaml:"extraArgs"`
	ExtraVolumes []HostPathMount `yaml:"extraVolumes"`
	ExtraEnvs    []EnvVar        `yaml:"extraEnvs"`
}

type APIServer struct {
	ControlPlaneComponent `yaml:",inline"`
	CertSANs              []string `yaml:"certSANs"`
}

type DNS struct {
	ImageMeta `yaml:",inline"`
	Disabled  bool `yaml:"disabled"`
}

type Proxy struct {
	Disabled bool `yaml:"disabled"`
}

type ClusterConfiguration struct {
	APIVersion                  string                `yaml:"apiVersion"`
	Kind                        string                `yaml:"kind"`
	Etcd                        Etcd                  `yaml:"etcd"`
	Networking                  Networking            `yaml:"networking"`
	KubernetesVersion           string                `yaml:"kubernetesVersion"`
	ControlPlaneEndpoint        string                `yaml:"controlPlaneEndpoint"`
	APIServer                   APIServer             `yaml:"apiServer"`
	ControllerManager           ControlPlaneComponent `yaml:"controllerManager"`
	Scheduler                   ControlPlaneComponent `yaml:"scheduler"`
	DNS                         DNS                   `yaml:"dns"`
	Proxy                       Proxy                 `yaml:"proxy"`
	CertificatesDir             string                `yaml:"certificatesDir"`
	ImageRepository             string                `yaml:"imageRepository"`
	FeatureGates                map[string]bool       `yaml:"featureGates"`
	ClusterName                 string                `yaml:"clusterName"`
	EncryptionAlgorithm         string                `yaml:"encryptionAlgorithm"`
	CertificateValidityPeriod   string                `yaml:"certificateValidityPeriod"`
	CACertificateValidityPeriod string                `yaml:"caCertificateValidityPeriod"`
}

type BootstrapTokenDiscovery struct {
	Token                    string   `yaml:"token"`
	APIServerEndpoint        string   `yaml:"apiServerEndpoint"`
	CACertHashes             []string `yaml:"caCertHashes"`
	UnsafeSkipCAVerification bool     `yaml:"unsafeSkipCAVerification"`
}

type FileDiscovery struct {
	KubeConfigPath string `yaml:"kubeConfigPath"`
}

type Discovery struct {
	BootstrapToken    *BootstrapTokenDiscovery `yaml:"bootstrapToken"`
	File              *FileDiscovery           `yaml:"file"`
	TLSBootstrapToken string                   `yaml:"tlsBootstrapToken"`
}

type JoinControlPlane struct {
	LocalAPIEndpoint APIEndpoint `yaml:"localAPIEndpoint"`
	CertificateKey   string      `yaml:"certificateKey"`
}

type JoinConfiguration struct {
	APIVersion       string                  `yaml:"apiVersion"`
	Kind             string                  `yaml:"kind"`
	DryRun           bool                    `yaml:"dryRun"`
	NodeRegistration NodeRegistrationOptions `yaml:"nodeRegistration"`
	CACertPath       string                  `yaml:"caCertPath"`
	Discovery        Discovery               `yaml:"discovery"`
	ControlPlane     *JoinControlPlane       `yaml:"controlPlane"`
	SkipPhases       []string                `yaml:"skipPhases"`
	Patches          *Patches                `yaml:"patches"`
	Timeouts         *Timeouts               `yaml:"timeouts"`
}

type ResetConfiguration struct {
	APIVersion            string    `yaml:"apiVersion"`
	Kind                  string    `yaml:"kind"`
	CleanupTmpDir         bool      `yaml:"cleanupTmpDir"`
	CertificatesDir       string    `yaml:"certificatesDir"`
	CRISocket             string    `yaml:"criSocket"`
	DryRun                bool      `yaml:"dryRun"`
	Force                 bool      `yaml:"force"`
	IgnorePreflightErrors []string  `yaml:"ignorePreflightErrors"`
	SkipPhases            []string  `yaml:"skipPhases"`
	UnmountFlags          []string  `yaml:"unmountFlags"`
	Timeouts              *Timeouts `yaml:"timeouts"`
}

// UpgradeConfiguration: only the top level is modelled (the scripts never use it).
type UpgradeConfiguration struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Apply      map[string]any `yaml:"apply"`
	Node       map[string]any `yaml:"node"`
	Plan       map[string]any `yaml:"plan"`
	Diff       map[string]any `yaml:"diff"`
	Timeouts   *Timeouts      `yaml:"timeouts"`
}

// KubeletConfiguration / KubeProxyConfiguration: only apiVersion/kind (and
// the kubelet's cgroupDriver) are checked; other fields are kept as-is.
type loose map[string]any

// kubeadmConfig is everything found in one --config file.
type kubeadmConfig struct {
	Init      *InitConfiguration
	Cluster   *ClusterConfiguration
	Join      *JoinConfiguration
	Reset     *ResetConfiguration
	Upgrade   *UpgradeConfiguration
	Kubelet   loose
	KubeProxy loose
	// KubeletYAML is the KubeletConfiguration document as written (for /var/lib/kubelet/config.yaml).
	KubeletYAML []byte
}

var (
	tokenFullRe = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	caHashRe    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	k8sVerRe    = regexp.MustCompile(`^v1\.\d+\.\d+$`)
	labelKeyRe  = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	dnsNameRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// loadKubeadmConfig reads, strictly decodes and validates a --config file.
func loadKubeadmConfig(path string) (*kubeadmConfig, error) {
	b, err := readConfig(path)
	if err != nil {
		return nil, fmt.Errorf("unable to read config from %q: %v", path, err)
	}
	return parseKubeadmConfig(b)
}

func parseKubeadmConfig(b []byte) (*kubeadmConfig, error) {
	cfg := &kubeadmConfig{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	n := 0
	seen := map[string]bool{}
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("error converting YAML to JSON: %v", err)
		}
		n++
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue // empty document
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("document %d is not a YAML mapping", n)
		}
		apiVersion, kind := scalarField(root, "apiVersion"), scalarField(root, "kind")
		if apiVersion == "" || kind == "" {
			return nil, fmt.Errorf("document %d: Object 'apiVersion' and 'Kind' are missing in the YAML", n)
		}
		gvk := fmt.Sprintf("%s, Kind=%s", apiVersion, kind)
		var target any
		switch {
		case apiVersion == kubeadmAPI && kind == "InitConfiguration":
			cfg.Init = &InitConfiguration{}
			target = cfg.Init
		case apiVersion == kubeadmAPI && kind == "ClusterConfiguration":
			cfg.Cluster = &ClusterConfiguration{}
			target = cfg.Cluster
		case apiVersion == kubeadmAPI && kind == "JoinConfiguration":
			cfg.Join = &JoinConfiguration{}
			target = cfg.Join
		case apiVersion == kubeadmAPI && kind == "ResetConfiguration":
			cfg.Reset = &ResetConfiguration{}
			target = cfg.Reset
		case apiVersion == kubeadmAPI && kind == "UpgradeConfiguration":
			cfg.Upgrade = &UpgradeConfiguration{}
			target = cfg.Upgrade
		case apiVersion == "kubelet.config.k8s.io/v1beta1" && kind == "KubeletConfiguration":
			cfg.Kubelet = loose{}
			target = &cfg.Kubelet
			out, _ := yaml.Marshal(root)
			cfg.KubeletYAML = out
		case apiVersion == "kubeproxy.config.k8s.io/v1alpha1" && kind == "KubeProxyConfiguration":
			cfg.KubeProxy = loose{}
			target = &cfg.KubeProxy
		case strings.HasPrefix(apiVersion, "kubeadm.k8s.io/"):
			return nil, fmt.Errorf("no kind %q is registered for version %q in scheme (this kubeadm supports %s)", kind, apiVersion, kubeadmAPI)
		default:
			return nil, fmt.Errorf("document %d: unknown or unsupported %s", n, gvk)
		}
		if seen[kind] {
			return nil, fmt.Errorf("found multiple documents of kind %s", kind)
		}
		seen[kind] = true
		if err := strictCheck(root, reflect.TypeOf(target).Elem(), ""); err != nil {
			return nil, fmt.Errorf("error unmarshaling configuration %s: strict decoding error: %v", gvk, err)
		}
		if err := root.Decode(target); err != nil {
			return nil, fmt.Errorf("error unmarshaling configuration %s: %v", gvk, err)
		}
	}
	if n == 0 || (cfg.Init == nil && cfg.Cluster == nil && cfg.Join == nil && cfg.Reset == nil && cfg.Upgrade == nil && cfg.Kubelet == nil && cfg.KubeProxy == nil) {
		return nil, errors.New("the configuration holds no known document")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func scalarField(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// strictCheck walks a YAML node against a Go type like kubeadm's strict
// decoder: unknown fields, duplicate fields and wrong shapes are errors with
// the field path (e.g. `unknown field "apiServer.extraArgz"`).
func strictCheck(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	where := path
	if where == "" {
		where = "(root)"
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("line %d: cannot unmarshal %s into Go struct field %s of type %s", n.Line, shape(n), where, t.Name())
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			if seen[k] {
				return fmt.Errorf("duplicate field %q", p)
			}
			seen[k] = true
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("unknown field %q", p)
			}
			if err := strictCheck(n.Content[i+1], ft, p); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: cannot unmarshal %s into Go struct field %s of type []%s (kubeadm v1beta4 wants a list here)", n.Line, shape(n), where, t.Elem().Name())
		}
		for i, c := range n.Content {
			if err := strictCheck(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("line %d: cannot unmarshal %s into Go struct field %s of type map", n.Line, shape(n), where)
		}
		if t.Elem().Kind() != reflect.Interface {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := strictCheck(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value); err != nil {
					return err
				}
			}
		}
	case reflect.Interface:
	default:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: cannot unmarshal %s into Go struct field %s of type %s", n.Line, shape(n), where, t.Kind())
		}
	}
	return nil
}

func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			collectFields(f.Type, out)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "array"
	default:
		return "scalar"
	}
}

// validate: the semantic checks kubeadm applies that the scripts can get wrong.
func (c *kubeadmConfig) validate() error {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if c.Init != nil {
		validateNodeReg("InitConfiguration.nodeRegistration", &c.Init.NodeRegistration, add)
		validateEndpoint("InitConfiguration.localAPIEndpoint", c.Init.LocalAPIEndpoint, add)
		for i, t := range c.Init.BootstrapTokens {
			if !tokenFullRe.MatchString(t.Token) {
				add("InitConfiguration.bootstrapTokens[%d].token: Invalid value: the bootstrap token must match %s", i, tokenFullRe)
			}
			if t.TTL != "" {
				if _, err := time.ParseDuration(t.TTL); err != nil {
					add("InitConfiguration.bootstrapTokens[%d].ttl: Invalid value %q", i, t.TTL)
				}
			}
		}
		if c.Init.CertificateKey != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.Init.CertificateKey) {
			add("InitConfiguration.certificateKey: Invalid value: must be 64 hex characters")
		}
		validateTimeouts("InitConfiguration.timeouts", c.Init.Timeouts, add)
	}
	if c.Cluster != nil {
		cc := c.Cluster
		if cc.KubernetesVersion != "" && !k8sVerRe.MatchString(cc.KubernetesVersion) {
			add("ClusterConfiguration.kubernetesVersion: Invalid value: %q: must match %s (this stand-in accepts only exact versions, no labels like \"stable\")", cc.KubernetesVersion, k8sVerRe)
		}
		for _, s := range []struct{ name, v string }{{"serviceSubnet", cc.Networking.ServiceSubnet}, {"podSubnet", cc.Networking.PodSubnet}} {
			for _, cidr := range strings.Split(s.v, ",") {
				if s.v == "" {
					break
				}
				if _, _, err := net.ParseCIDR(strings.TrimSpace(cidr)); err != nil {
					add("ClusterConfiguration.networking.%s: Invalid value: %q: couldn't parse subnet", s.name, s.v)
				}
			}
		}
		if d := cc.Networking.DNSDomain; d != "" && !dnsNameRe.MatchString(d) {
			add("ClusterConfiguration.networking.dnsDomain: Invalid value: %q", d)
		}
		if e := cc.ControlPlaneEndpoint; e != "" {
			host, port, err := net.SplitHostPort(e)
			if err != nil {
				host = e
			} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				add("ClusterConfiguration.controlPlaneEndpoint: Invalid value: %q: bad port", e)
			}
			if net.ParseIP(host) == nil && !dnsNameRe.MatchString(host) {
				add("ClusterConfiguration.controlPlaneEndpoint: Invalid value: %q: not an IP or DNS name", e)
			}
		}
		switch cc.EncryptionAlgorithm {
		case "", "RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384":
		default:
			add("ClusterConfiguration.encryptionAlgorithm: Unsupported value: %q", cc.EncryptionAlgorithm)
		}
		for _, p := range []struct{ name, v string }{{"certificateValidityPeriod", cc.CertificateValidityPeriod}, {"caCertificateValidityPeriod", cc.CACertificateValidityPeriod}} {
			if p.v != "" {
				if _, err := time.ParseDuration(p.v); err != nil {
					add("ClusterConfiguration.%s: Invalid value %q", p.name, p.v)
				}
			}
		}
		for name, comp := range map[string]ControlPlaneComponent{"apiServer": cc.APIServer.ControlPlaneComponent, "controllerManager": cc.ControllerManager, "scheduler": cc.Scheduler} {
			validateArgs("ClusterConfiguration."+name+".extraArgs", comp.ExtraArgs, add)
		}
		for i, s := range cc.APIServer.CertSANs {
			if net.ParseIP(s) == nil && !regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`).MatchString(s) {
				add("ClusterConfiguration.apiServer.certSANs[%d]: Invalid value: %q: altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards", i, s)
			}
		}
		if cc.ClusterName != "" && !dnsNameRe.MatchString(cc.ClusterName) {
			add("ClusterConfiguration.clusterName: Invalid value: %q", cc.ClusterName)
		}
		if cc.Etcd.Local != nil && cc.Etcd.External != nil {
			add("ClusterConfiguration.etcd: Invalid value: local and external are mutually exclusive")
		}
	}
	if c.Join != nil {
		j := c.Join
		validateNodeReg("JoinConfiguration.nodeRegistration", &j.NodeRegistration, add)
		d := j.Discovery
		switch {
		case d.BootstrapToken == nil && d.File == nil:
			add("JoinConfiguration.discovery: Invalid value: bootstrapToken or file must be set")
		case d.BootstrapToken != nil && d.File != nil:
			add("JoinConfiguration.discovery: Invalid value: bootstrapToken and file cannot both be set")
		case d.BootstrapToken != nil:
			bt := d.BootstrapToken
			if strings.Contains(bt.Token, "__") {
				add("JoinConfiguration.discovery.bootstrapToken.token: Invalid value: %q: the token placeholder was not replaced", bt.Token)
			} else if !tokenFullRe.MatchString(bt.Token) {
				add("JoinConfiguration.discovery.bootstrapToken.token: Invalid value: the bootstrap token is invalid (must match %s)", tokenFullRe)
			}
			if bt.APIServerEndpoint == "" {
				add("JoinConfiguration.discovery.bootstrapToken.apiServerEndpoint: Required value")
			} else if _, port, err := net.SplitHostPort(bt.APIServerEndpoint); err != nil || port == "" {
				add("JoinConfiguration.discovery.bootstrapToken.apiServerEndpoint: Invalid value: %q: must be host:port", bt.APIServerEndpoint)
			}
			if len(bt.CACertHashes) == 0 && !bt.UnsafeSkipCAVerification {
				add("JoinConfiguration.discovery.bootstrapToken.caCertHashes: Invalid value: using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue")
			}
			for i, h := range bt.CACertHashes {
				if !caHashRe.MatchString(h) {
					add("JoinConfiguration.discovery.bootstrapToken.caCertHashes[%d]: Invalid value: %q: must be sha256:<64 hex characters>", i, h)
				}
			}
		}
		if d.TLSBootstrapToken != "" && !tokenFullRe.MatchString(d.TLSBootstrapToken) {
			add("JoinConfiguration.discovery.tlsBootstrapToken: Invalid value: the bootstrap token is invalid")
		}
		if j.ControlPlane != nil {
			validateEndpoint("JoinConfiguration.controlPlane.localAPIEndpoint", j.ControlPlane.LocalAPIEndpoint, add)
		}
		validateTimeouts("JoinConfiguration.timeouts", j.Timeouts, add)
	}
	if c.Kubelet != nil {
		if d, ok := c.Kubelet["cgroupDriver"]; ok && d != "systemd" {
			add("KubeletConfiguration.cgroupDriver: Invalid value: %v: the stand-in requires \"systemd\" (containerd is configured with SystemdCgroup = true)", d)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func validateNodeReg(p string, r *NodeRegistrationOptions, add func(string, ...any)) {
	if r.Name != "" && !dnsNameRe.MatchString(r.Name) {
		add("%s.name: Invalid value: %q: a lowercase RFC 1123 subdomain", p, r.Name)
	}
	if r.CRISocket != "" && !strings.HasPrefix(r.CRISocket, "unix:///") {
		add("%s.criSocket: Invalid value: %q: must be a unix:// URL with an absolute path", p, r.CRISocket)
	}
	switch r.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		add("%s.imagePullPolicy: Unsupported value: %q", p, r.ImagePullPolicy)
	}
	if r.Taints != nil {
		for i, t := range *r.Taints {
			if !labelKeyRe.MatchString(t.Key) {
				add("%s.taints[%d].key: Invalid value: %q", p, i, t.Key)
			}
			switch t.Effect {
			case "NoSchedule", "PreferNoSchedule", "NoExecute":
			default:
				add("%s.taints[%d].effect: Unsupported value: %q", p, i, t.Effect)
			}
		}
	}
	validateArgs(p+".kubeletExtraArgs", r.KubeletExtraArgs, add)
}

func validateArgs(p string, args []Arg, add func(string, ...any)) {
	for i, a := range args {
		if a.Name == "" || strings.HasPrefix(a.Name, "-") {
			add("%s[%d].name: Invalid value: %q: a flag name without leading dashes", p, i, a.Name)
		}
	}
}

func validateEndpoint(p string, e APIEndpoint, add func(string, ...any)) {
	if e.AdvertiseAddress != "" && net.ParseIP(e.AdvertiseAddress) == nil {
		add("%s.advertiseAddress: Invalid value: %q: couldn't use %q as \"apiserver-advertise-address\", must be ipv4 or ipv6 address", p, e.AdvertiseAddress, e.AdvertiseAddress)
	}
	if e.BindPort != 0 && (e.BindPort < 1 || e.BindPort > 65535) {
		add("%s.bindPort: Invalid value: %d: port number is not valid", p, e.BindPort)
	}
}

func validateTimeouts(p string, t *Timeouts, add func(string, ...any)) {
	if t == nil {
		return
	}
	v := reflect.ValueOf(*t)
	for i := 0; i < v.NumField(); i++ {
		if s := v.Field(i).String(); s != "" {
			if _, err := time.ParseDuration(s); err != nil {
				add("%s.%s: Invalid value %q: not a duration", p, v.Type().Field(i).Tag.Get("yaml"), s)
			}
		}
	}
}
