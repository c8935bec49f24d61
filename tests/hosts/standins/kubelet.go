package main

// The kubelet stand-in: a daemon that fails like the real kubelet before
// kubeadm wrote its config, and otherwise leaves behind the host state a
// running node has (CNI files, interfaces, iptables/nftables rules) so that
// reset/cleanup tests have something real to remove. No pods ever run.

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"
)

func kubeletMain(args []string) int {
	config := ""
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--version":
			fmt.Printf("Kubernetes v%s (STAND-IN kubelet for kubeadm-pulumi tests)\n", version("kubelet"))
			return 0
		case a == "--config" && i+1 < len(args):
			config = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			config = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "--"):
			flags = append(flags, a)
		default:
			fmt.Fprintf(os.Stderr, "E0000 kubelet (stand-in): unexpected argument %q\n", a)
			notes("unexpected argument %q", a)
			record()
			return 1
		}
	}
	note("flags", flags)
	fmt.Fprintf(os.Stderr, "I0000 STAND-IN kubelet v%s (kubeadm-pulumi tests, not the real kubelet; no pods run)\n", version("kubelet"))
	if config == "" {
		// Like the packaged unit without kubeadm's drop-in having a config yet.
		config = "/var/lib/kubelet/config.yaml"
	}
	b, err := readConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "E0000 \"command failed\" err=\"failed to load kubelet config file, path: %s, error: failed to load Kubelet config file %s, error failed to read kubelet config file \\\"%s\\\", error: open %s: no such file or directory\"\n", config, config, config, config)
		notes("no config at %s: exiting 1 (systemd restarts it until kubeadm writes one)", config)
		record()
		return 1
	}
	var kc map[string]any
	if err := yaml.Unmarshal(b, &kc); err != nil || kc["apiVersion"] != "kubelet.config.k8s.io/v1beta1" || kc["kind"] != "KubeletConfiguration" {
		fmt.Fprintf(os.Stderr, "E0000 \"command failed\" err=\"failed to load kubelet config file %s: not a kubelet.config.k8s.io/v1beta1 KubeletConfiguration (%v)\"\n", config, err)
		notes("bad config")
		record()
		return 1
	}
	if d, ok := kc["cgroupDriver"]; ok && d != "systemd" {
		fmt.Fprintf(os.Stderr, "E0000 \"command failed\" err=\"cgroupDriver %v does not match the container runtime's systemd cgroup driver\"\n", d)
		notes("cgroupDriver %v", d)
		record()
		return 1
	}
	endpoint := "unix://" + defaultCRISocket
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--container-runtime-endpoint="); ok {
			endpoint = v
		}
	}
	if err := criPing(endpoint); err != nil {
		fmt.Fprintf(os.Stderr, "W0000 kubelet (stand-in): container runtime not reachable yet: %v\n", err)
		notes("container runtime not reachable: %v", err)
	}
	simulateNodeState()

	marker := P(filepath.Join(runDir, "kubelet.ready"))
	_ = os.MkdirAll(filepath.Dir(marker), 0o755)
	_ = os.WriteFile(marker, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	notes("running (STAND-IN: no pods, no API server); ready marker %s", filepath.Join(runDir, "kubelet.ready"))
	record()
	fmt.Fprintln(os.Stderr, "I0000 kubelet (stand-in): running until SIGTERM")

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	_ = os.Remove(marker)
	fmt.Fprintln(os.Stderr, "I0000 kubelet (stand-in): stopped")
	return 0
}

// simulateNodeState creates what a running node (kubelet + CNI + kube-proxy)
// leaves on a host. Each step may fail (logged as a warning). Under
// KP_STANDIN_ROOT only the files are created: interfaces and firewall rules
// are host-global.
func simulateNodeState() {
	warn := func(f string, a ...any) {
		msg := fmt.Sprintf(f, a...)
		fmt.Fprintf(os.Stderr, "W0000 kubelet (stand-in): %s\n", msg)
		notes("warning: %s", msg)
	}
	notes("SIMULATING the host state of a running node (CNI config, /opt/cni/bin/flannel, cni0/flannel.1, KUBE-STANDIN-* iptables chains, nftables table ip kube-proxy)")
	if err := writeFile("/etc/cni/net.d/10-standin.conflist", 0o644, []byte(`{"cniVersion":"1.0.0","name":"standin","plugins":[{"type":"bridge","bridge":"cni0"}],"_comment":"STAND-IN written by the kubelet stand-in (kubeadm-pulumi tests)"}`+"\n")); err != nil {
		warn("cannot write the CNI config: %v", err)
	}
	if err := writeFile("/var/lib/cni/standin", 0o644, []byte("STAND-IN CNI state (kubeadm-pulumi tests)\n")); err != nil {
		warn("cannot write /var/lib/cni/standin: %v", err)
	}
	// What flannel's init container does on a real node (cp -f /flannel /opt/cni/bin/flannel):
	// a plugin binary that no package owns, which teardown must remove.
	if err := writeFile("/opt/cni/bin/flannel", 0o755, []byte("#!/bin/sh\necho 'STAND-IN flannel CNI plugin (kubeadm-pulumi tests)' >&2\nexit 1\n")); err != nil {
		warn("cannot write /opt/cni/bin/flannel: %v", err)
	}
	if testRoot() {
		notes("KP_STANDIN_ROOT is set: not touching interfaces, iptables or nftables")
		return
	}
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if _, err := os.Stat("/sys/class/net/cni0"); err != nil {
		if err := run("ip", "link", "add", "cni0", "type", "bridge"); err != nil {
			warn("%v", err)
		}
	}
	if _, err := os.Stat("/sys/class/net/flannel.1"); err != nil {
		if err := run("ip", "link", "add", "flannel.1", "type", "dummy"); err != nil {
			warn("%v", err)
		}
	}
	for _, c := range []struct{ table, chain, from string }{{"filter", "KUBE-STANDIN-SERVICES", "FORWARD"}, {"nat", "KUBE-STANDIN-POSTROUTING", "POSTROUTING"}} {
		if run("iptables", "-t", c.table, "-S", c.chain) != nil {
			if err := run("iptables", "-t", c.table, "-N", c.chain); err != nil {
				warn("%v", err)
				continue
			}
		}
		if run("iptables", "-t", c.table, "-C", c.from, "-j", c.chain) != nil {
			if err := run("iptables", "-t", c.table, "-I", c.from, "-j", c.chain); err != nil {
				warn("%v", err)
			}
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if err := run("nft", "add", "table", "ip", "kube-proxy"); err != nil {
			warn("%v", err)
		}
	} else {
		notes("nft not installed: no nftables table created")
	}
}
