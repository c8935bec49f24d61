package main

// The containerd and crictl stand-ins. containerd validates its config the
// way the scripts must leave it and listens on the CRI socket; there are no
// containers. Images "pulled" through crictl or kubeadm are names in a file.

import (
	"bufio"

	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

const (
	defaultCRISocket = "/run/containerd/containerd.sock"
	criGreeting      = "STANDIN-CONTAINERD"
	imageStore       = stateDir + "/images"
)

// ---------------------------------------------------------------- containerd

func containerdMain(args []string) int {
	config := "/etc/containerd/config.toml"
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--version" || a == "-v" || a == "version":
			fmt.Printf("containerd containerd.io %s STAND-IN (kubeadm-pulumi tests, not the real containerd)\n", version("containerd"))
			return 0
		case (a == "--config" || a == "-c") && i+1 < len(args):
			config = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			config = strings.TrimPrefix(a, "--config=")
		case a == "--log-level" || a == "-l" || a == "--address" || a == "-a" || a == "--root" || a == "--state":
			i++
		default:
			if strings.HasPrefix(a, "-") && !strings.Contains(a, "=") {
				continue
			}
			errf("containerd (stand-in): unexpected argument %q", a)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "containerd (STAND-IN for kubeadm-pulumi tests, not the real containerd) %s starting, config %s\n", version("containerd"), config)
	sandbox, err := checkContainerdConfig(config)
	if err != nil {
		errf("containerd: %v", err)
		notes("refused to start: %v", err)
		return 1
	}
	note("sandbox_image", sandbox)
	fmt.Fprintf(os.Stderr, "containerd: CRI enabled, SystemdCgroup = true, sandbox image %s\n", sandbox)

	sock := P(defaultCRISocket)
	if err := os.MkdirAll(filepath.Dir(sock), 0o711); err != nil {
		errf("containerd: cannot create %s: %v", filepath.Dir(sock), err)
		return 1
	}
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		errf("containerd: cannot listen on %s: %v", sock, err)
		notes("cannot listen: %v", err)
		return 1
	}
	_ = os.Chmod(sock, 0o660)
	notes("listening on %s (no real CRI: connections get a greeting line)", defaultCRISocket)
	record()
	fmt.Fprintf(os.Stderr, "containerd: serving on %s\n", sock)

	// Like the real CRI plugin (containerd 2.x internal/cri/server/cni_conf_syncer.go):
	// the CNI conf dir is created at start and watched; when the directory itself
	// is removed, the CRI service stops and containerd exits with status 1.
	confDir := P("/etc/cni/net.d")
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		errf("containerd: failed to create cni conf dir=%s for watch: %v", confDir, err)
		return 1
	}
	dirGone := make(chan struct{})
	go func() {
		for {
			time.Sleep(200 * time.Millisecond)
			if _, err := os.Stat(confDir); os.IsNotExist(err) {
				close(dirGone)
				return
			}
		}
	}()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "%s %s\n", criGreeting, version("containerd"))
			}(c)
		}
	}()
	select {
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "containerd: %v received, removing %s\n", s, sock)
		_ = ln.Close()
		_ = os.Remove(sock)
		return 0
	case <-dirGone:
		fmt.Fprintln(os.Stderr, `level=fatal msg="Failed to run CRI service" error="cni network conf monitor error: cni conf dir is removed, stop watching"`)
		notes("exited: /etc/cni/net.d was removed while containerd watched it (the real containerd 2.x does the same)")
		_ = ln.Close()
		_ = os.Remove(sock)
		return 1
	}
}

// checkContainerdConfig enforces what kubeadm clusters need from the config
// and returns the pinned sandbox image.
func checkContainerdConfig(path string) (string, error) {
	b, err := readConfig(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the config: %v", err)
	}
	var cfg map[string]any
	if _, err := toml.Decode(string(b), &cfg); err != nil {
		return "", fmt.Errorf("failed to load TOML from %s: %v", path, err)
	}
	if dp, ok := cfg["disabled_plugins"].([]any); ok {
		for _, p := range dp {
			if s, _ := p.(string); s == "cri" || strings.HasPrefix(s, "io.containerd.grpc.v1.cri") || strings.HasPrefix(s, "io.containerd.cri.") {
				return "", fmt.Errorf("%s disables the CRI plugin (disabled_plugins = [%q]): kubelet and kubeadm cannot use this containerd (Docker's containerd.io default config; the prepare step must overwrite it)", path, s)
			}
		}
	}
	ver, _ := cfg["version"].(int64)
	if ver != 3 {
		return "", fmt.Errorf("%s: config version is %v, this stand-in of containerd 2.x requires `version = 3`", path, cfg["version"])
	}
	plugins, _ := cfg["plugins"].(map[string]any)
	runtime := dig(plugins, "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options")
	if sc, ok := runtime["SystemdCgroup"].(bool); !ok || !sc {
		return "", fmt.Errorf(`%s: [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options] SystemdCgroup must be true (the kubelet uses the systemd cgroup driver); got %v`, path, runtime["SystemdCgroup"])
	}
	if rt := dig(plugins, "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc"); rt["runtime_type"] != nil && rt["runtime_type"] != "io.containerd.runc.v2" {
		return "", fmt.Errorf("%s: runc runtime_type must be io.containerd.runc.v2, got %v", path, rt["runtime_type"])
	}
	sandbox, _ := dig(plugins, "io.containerd.cri.v1.images", "pinned_images")["sandbox"].(string)
	if sandbox == "" {
		sandbox = "registry.k8s.io/pause:3.10 (containerd default; no pinned_images.sandbox in the config)"
	}
	return sandbox, nil
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

// criPing connects to the CRI socket and expects the stand-in's greeting.
func criPing(endpoint string) error {
	path, err := socketPath(endpoint)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unix", P(path), 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect: connect endpoint '%s', make sure you are running as root and the endpoint has been started: %v", endpoint, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, criGreeting) {
		return fmt.Errorf("endpoint '%s' did not answer like the containerd stand-in (%q, %v)", endpoint, line, err)
	}
	return nil
}

// ------------------------------------------------------------- image store

func imageList() []string {
	b, err := os.ReadFile(P(imageStore))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func imagePresent(img string) bool {
	for _, i := range imageList() {
		if i == img {
			return true
		}
	}
	return false
}

func imageAdd(img string) error {
	if imagePresent(img) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(P(imageStore)), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(P(imageStore), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, img)
	return err
}

// validImageRef: a plausible image reference (registry/name[:tag][@digest]).
func validImageRef(img string) bool {
	if img == "" || strings.ContainsAny(img, " \t\n") || strings.HasPrefix(img, "-") {
		return false
	}
	return true
}

// -------------------------------------------------------------------- crictl

func crictlMain(args []string) int {
	endpoint := ""
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--runtime-endpoint" || a == "-r" || a == "--image-endpoint" || a == "-i" || a == "--timeout" || a == "-t" || a == "--config" || a == "-c":
			if i+1 >= len(args) {
				errf("crictl: flag needs an argument: %s", a)
				return 1
			}
			if a == "--runtime-endpoint" || a == "-r" {
				endpoint = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--runtime-endpoint="):
			endpoint = strings.TrimPrefix(a, "--runtime-endpoint=")
		case strings.HasPrefix(a, "--image-endpoint=") || strings.HasPrefix(a, "--timeout=") || strings.HasPrefix(a, "--config="):
		case a == "--debug" || a == "-D":
		default:
			rest = append(rest, a)
		}
	}
	if endpoint == "" {
		endpoint = crictlConfigEndpoint()
	}
	note("endpoint", endpoint)
	if len(rest) == 0 {
		errf("crictl (stand-in): no command given")
		return 1
	}
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "version", "--version":
		fmt.Printf("Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  %s (STAND-IN)\nRuntimeApiVersion:  v1\ncrictl version v%s (STAND-IN for kubeadm-pulumi tests)\n", version("containerd"), version("crictl"))
		if err := criPing(endpoint); err != nil {
			errf("crictl: %v", err)
			return 1
		}
		return 0
	case "info":
		if err := criPing(endpoint); err != nil {
			errf("FATA[0000] validate service connection: %v", err)
			return 1
		}
		fmt.Printf("{\n  \"status\": {\"conditions\": [{\"type\": \"RuntimeReady\", \"status\": true}, {\"type\": \"NetworkReady\", \"status\": false, \"reason\": \"NetworkPluginNotReady\"}]},\n  \"standin\": \"kubeadm-pulumi containerd stand-in, no real CRI\"\n}\n")
		return 0
	case "inspecti":
		imgs := positional(cargs, "-q", "--quiet", "-o", "--output")
		if len(imgs) == 0 {
			errf("FATA[0000] ID cannot be empty")
			return 1
		}
		if err := criPing(endpoint); err != nil {
			errf("FATA[0000] validate service connection: %v", err)
			return 1
		}
		for _, img := range imgs {
			if !imagePresent(img) {
				errf("FATA[0000] no such image %q present", img)
				return 1
			}
			fmt.Printf("{\"status\": {\"id\": \"sha256:%s\", \"repoTags\": [%q]}}\n", sha256Hex([]byte(img)), img)
		}
		return 0
	case "pull":
		imgs := positional(cargs, "--creds", "--auth", "--pod-config", "-p", "--username", "-u")
		if len(imgs) != 1 || !validImageRef(imgs[0]) {
			errf("FATA[0000] image name cannot be empty / exactly one image expected, got %q", imgs)
			return 1
		}
		if err := criPing(endpoint); err != nil {
			errf("FATA[0000] validate service connection: %v", err)
			return 1
		}
		if err := imageAdd(imgs[0]); err != nil {
			errf("crictl: cannot record the image: %v", err)
			return 1
		}
		notes("pulled %s (recorded in the stand-in image store, nothing downloaded)", imgs[0])
		fmt.Printf("Image is up to date for sha256:%s\n", sha256Hex([]byte(imgs[0])))
		return 0
	case "images", "img":
		if err := criPing(endpoint); err != nil {
			errf("FATA[0000] validate service connection: %v", err)
			return 1
		}
		fmt.Println("IMAGE                                     TAG                 IMAGE ID            SIZE")
		for _, i := range imageList() {
			name, tag := i, "<none>"
			if k := strings.LastIndex(i, ":"); k > strings.LastIndex(i, "/") {
				name, tag = i[:k], i[k+1:]
			}
			fmt.Printf("%-41s %-19s %-19s 0B\n", name, tag, sha256Hex([]byte(i))[:13])
		}
		return 0
	case "ps", "pods", "rmp", "rm", "stopp", "stop", "rmi":
		// no containers exist in the stand-in world
		if cmd == "ps" || cmd == "pods" {
			if err := criPing(endpoint); err != nil {
				errf("FATA[0000] validate service connection: %v", err)
				return 1
			}
		}
		return 0
	default:
		errf("crictl (stand-in): command %q is not implemented", cmd)
		return 1
	}
}

// positional returns the non-flag arguments, skipping the values of valueFlags.
func positional(args []string, valueFlags ...string) []string {
	takes := map[string]bool{}
	for _, f := range valueFlags {
		takes[f] = true
	}
	takes["-q"], takes["--quiet"] = false, false
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if takes[a] && !strings.Contains(a, "=") {
				i++
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// crictlConfigEndpoint reads runtime-endpoint from /etc/crictl.yaml.
func crictlConfigEndpoint() string {
	b, err := readConfig("/etc/crictl.yaml")
	if err != nil {
		return "unix://" + defaultCRISocket
	}
	var c struct {
		RuntimeEndpoint string `yaml:"runtime-endpoint"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil || c.RuntimeEndpoint == "" {
		if err != nil {
			errf("crictl: ignoring /etc/crictl.yaml: %v", err)
		}
		return "unix://" + defaultCRISocket
	}
	return c.RuntimeEndpoint
}

// ----------------------------------------------------------------------- ctr

// ctrMain: the commands of containerd's `ctr` the prepare step uses:
// `plugins ls` (is the CRI plugin up?), `-n k8s.io images ls -q` and
// `-n k8s.io images pull [--hosts-dir DIR] REF`, on the same image store as
// the crictl stand-in.
func ctrMain(args []string) int {
	namespace, address := "default", "/run/containerd/containerd.sock"
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "-n" || a == "--namespace" || a == "-a" || a == "--address") && i+1 < len(args):
			if a == "-n" || a == "--namespace" {
				namespace = args[i+1]
			} else {
				address = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--namespace="):
			namespace = strings.TrimPrefix(a, "--namespace=")
		case strings.HasPrefix(a, "--address="):
			address = strings.TrimPrefix(a, "--address=")
		default:
			rest = append(rest, a)
		}
	}
	note("namespace", namespace)
	if len(rest) == 0 {
		errf("ctr (stand-in): no command given")
		return 1
	}
	if rest[0] == "version" {
		fmt.Printf("Client:\n  Version:  v%s (STAND-IN)\n", version("containerd"))
		return 0
	}
	if err := criPing("unix://" + address); err != nil {
		errf("ctr: failed to dial %q: %v", address, err)
		return 1
	}
	switch {
	case len(rest) >= 2 && (rest[0] == "plugins" || rest[0] == "plugin") && (rest[1] == "ls" || rest[1] == "list"):
		fmt.Println("TYPE                                      ID                       PLATFORMS      STATUS")
		fmt.Println("io.containerd.snapshotter.v1              overlayfs                linux/amd64    ok")
		fmt.Println("io.containerd.grpc.v1                     cri                                     ok")
		return 0
	case len(rest) >= 2 && (rest[0] == "images" || rest[0] == "image" || rest[0] == "i") && (rest[1] == "ls" || rest[1] == "list"):
		if namespace != "k8s.io" {
			return 0
		}
		for _, i := range imageList() {
			fmt.Println(i)
		}
		return 0
	case len(rest) >= 2 && (rest[0] == "images" || rest[0] == "image" || rest[0] == "i") && rest[1] == "pull":
		var refs []string
		for i := 2; i < len(rest); i++ {
			a := rest[i]
			switch {
			case a == "--hosts-dir" && i+1 < len(rest):
				if st, err := os.Stat(P(rest[i+1])); err != nil || !st.IsDir() {
					errf("ctr: --hosts-dir %s is not a directory", rest[i+1])
					return 1
				}
				note("hosts_dir", rest[i+1])
				i++
			case strings.HasPrefix(a, "-"):
			default:
				refs = append(refs, a)
			}
		}
		if len(refs) != 1 || !validImageRef(refs[0]) {
			errf("ctr: exactly one image reference expected, got %q", refs)
			return 1
		}
		if namespace != "k8s.io" {
			errf("ctr (stand-in): pull into namespace %q: the kubelet only sees k8s.io", namespace)
			return 1
		}
		if err := imageAdd(refs[0]); err != nil {
			errf("ctr: cannot record the image: %v", err)
			return 1
		}
		fmt.Printf("%s: resolved (STAND-IN: recorded, nothing downloaded)\n", refs[0])
		return 0
	}
	errf("ctr (stand-in): command %q is not implemented", strings.Join(rest, " "))
	return 1
}
