// Command standin is a multi-call binary holding the STAND-IN versions of
// kubeadm, kubelet, kubectl, crictl and containerd that the host test tier
// installs instead of the real packages (which cannot be downloaded there).
// It dispatches on the name it was called by (filepath.Base(os.Args[0])).
//
// Every invocation appends one JSON line to
// /var/log/kubeadm-pulumi-standins/<tool>.log (see record). Secrets are never
// logged: files are logged by sha256 and bootstrap tokens in argv are masked.
//
// Test knobs (environment):
//
//	KP_STANDIN_ROOT=/some/dir   prefix every absolute path read or written
//	                            (and skip host-global network changes)
//	KP_STANDIN_NO_SYSTEMCTL=1   do not call systemctl (log instead)
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

const (
	defaultKubernetesVersion = "1.36.4"
	defaultContainerdVersion = "2.2.6"
	criToolsVersion          = "1.36.0"
	logDir                   = "/var/log/kubeadm-pulumi-standins"
	stateDir                 = "/var/lib/kubeadm-pulumi-standins"
	runDir                   = "/run/kubeadm-pulumi-standins"
	versionDir               = "/usr/share/kubeadm-pulumi-standins/versions"
)

var tools = map[string]func(args []string) int{
	"kubeadm":    kubeadmMain,
	"kubelet":    kubeletMain,
	"kubectl":    kubectlMain,
	"crictl":     crictlMain,
	"containerd": containerdMain,
	"ctr":        ctrMain,
}

// inv is the record of this invocation, written by record().
var inv = struct {
	tool    string
	argv    []string
	files   map[string]string
	extra   map[string]any
	written bool
}{files: map[string]string{}, extra: map[string]any{}}

func main() {
	tool := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if tool == "standin" || tool == "standins" {
		// `standin <tool> args...` (handy in tests)
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: standin kubeadm|kubelet|kubectl|crictl|containerd [args...]")
			os.Exit(2)
		}
		tool, args = args[0], args[1:]
	}
	run, ok := tools[tool]
	if !ok {
		fmt.Fprintf(os.Stderr, "standin: unknown tool %q (called as %s)\n", tool, os.Args[0])
		os.Exit(2)
	}
	inv.tool = tool
	inv.argv = append([]string{tool}, args...)
	code := run(args)
	exit(code)
}

// exit writes the invocation record (once) and exits.
func exit(code int) {
	inv.extra["exit"] = code
	record()
	os.Exit(code)
}

// P maps an absolute path of the host to where the stand-ins use it
// (KP_STANDIN_ROOT prefix, for tests on a machine that is not a sandbox host).
func P(abs string) string {
	root := os.Getenv("KP_STANDIN_ROOT")
	if root == "" || !strings.HasPrefix(abs, "/") {
		return abs
	}
	return filepath.Join(root, abs)
}

func testRoot() bool { return os.Getenv("KP_STANDIN_ROOT") != "" }

var (
	tokenRe   = regexp.MustCompile(`[a-z0-9]{6}\.[a-z0-9]{16}`)
	hex64Re   = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	certKeyRe = regexp.MustCompile(`^--certificate-key(=|$)`)
)

// maskArgv hides bootstrap tokens anywhere and the value of --certificate-key.
func maskArgv(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		a = tokenRe.ReplaceAllString(a, "<redacted-token>")
		if certKeyRe.MatchString(a) || (i > 0 && argv[i-1] == "--certificate-key") {
			a = hex64Re.ReplaceAllString(a, "<redacted-key>")
		}
		out[i] = a
	}
	return out
}

// note adds a field to this invocation's log line.
func note(key string, value any) { inv.extra[key] = value }

// notes appends a message to the "notes" list of this invocation's log line.
func notes(format string, a ...any) {
	l, _ := inv.extra["notes"].([]string)
	inv.extra["notes"] = append(l, fmt.Sprintf(format, a...))
}

// record appends the JSON line for this invocation to <logDir>/<tool>.log.
// Daemons call it once they have started (or failed); others at exit.
func record() {
	if inv.written {
		return
	}
	inv.written = true
	line := map[string]any{
		"time":  time.Now().UTC().Format(time.RFC3339Nano),
		"argv":  maskArgv(inv.argv),
		"uid":   os.Getuid(),
		"pid":   os.Getpid(),
		"files": inv.files,
	}
	for k, v := range inv.extra {
		line[k] = v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(line)
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if err != nil {
		fmt.Fprintf(os.Stderr, "standin: cannot encode the log line: %v\n", err)
		return
	}
	dir := P(logDir)
	if err := os.MkdirAll(dir, 0o700); err == nil {
		_ = os.Chmod(dir, 0o700)
	}
	f, err := os.OpenFile(filepath.Join(dir, inv.tool+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "standin: cannot write the invocation log: %v\n", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}

// readConfig reads a file and records its sha256 (never its content) in the log.
func readConfig(abs string) ([]byte, error) {
	b, err := os.ReadFile(P(abs))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	inv.files[abs] = hex.EncodeToString(sum[:])
	return b, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func errf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

// version returns the version of the package that shipped this tool (a file
// the .deb installs), else an env override, else the default.
func version(tool string) string {
	if b, err := os.ReadFile(P(filepath.Join(versionDir, tool))); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v
		}
	}
	switch tool {
	case "containerd":
		if v := os.Getenv("CONTAINERD_VERSION"); v != "" {
			return v
		}
		return defaultContainerdVersion
	case "crictl":
		return criToolsVersion
	default:
		if v := os.Getenv("KUBERNETES_VERSION"); v != "" {
			return strings.TrimPrefix(v, "v")
		}
		return defaultKubernetesVersion
	}
}

// systemctl runs `systemctl args...` unless KP_STANDIN_NO_SYSTEMCTL=1.
func systemctl(args ...string) error {
	calls, _ := inv.extra["systemctl"].([]string)
	inv.extra["systemctl"] = append(calls, strings.Join(args, " "))
	if os.Getenv("KP_STANDIN_NO_SYSTEMCTL") == "1" {
		return nil
	}
	cmd := exec.Command("systemctl", args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// kubeletRunning: is the kubelet stand-in up (systemd says active, and its
// ready marker names a live process)? Without systemctl only the marker counts.
func kubeletRunning() bool {
	if os.Getenv("KP_STANDIN_NO_SYSTEMCTL") != "1" {
		if exec.Command("systemctl", "is-active", "--quiet", "kubelet").Run() != nil {
			return false
		}
	}
	return markerAlive(filepath.Join(runDir, "kubelet.ready"))
}

// markerAlive: the file holds the pid of a live process.
func markerAlive(abs string) bool {
	b, err := os.ReadFile(P(abs))
	if err != nil {
		return false
	}
	pid := strings.TrimSpace(string(b))
	if pid == "" {
		return false
	}
	_, err = os.Stat("/proc/" + pid)
	return err == nil
}

// writeFile writes content with mode, creating parent directories (0755).
func writeFile(abs string, mode os.FileMode, content []byte) error {
	p := P(abs)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".standin-tmp"
	if err := os.WriteFile(tmp, content, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// dirEntries lists a directory (empty when absent).
func dirEntries(abs string) []string {
	es, err := os.ReadDir(P(abs))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func fileExists(abs string) bool {
	_, err := os.Stat(P(abs))
	return err == nil
}

// socketPath turns a CRI endpoint (unix:///path or /path) into a host path.
func socketPath(endpoint string) (string, error) {
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		p := strings.TrimPrefix(endpoint, "unix://")
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("endpoint %q: the socket path must be absolute", endpoint)
		}
		return normRun(p), nil
	case strings.HasPrefix(endpoint, "/"):
		return normRun(endpoint), nil
	default:
		return "", fmt.Errorf("endpoint %q is not a unix:// socket (the stand-ins only speak unix sockets)", endpoint)
	}
}

// normRun maps /var/run/... to /run/... (a symlink on Debian hosts; under
// KP_STANDIN_ROOT there is no such symlink).
func normRun(p string) string {
	if strings.HasPrefix(p, "/var/run/") {
		return "/run/" + strings.TrimPrefix(p, "/var/run/")
	}
	return p
}

// systemctlQuiet runs a systemctl query, output discarded (not recorded).
func systemctlQuiet(args ...string) error {
	return exec.Command("systemctl", args...).Run()
}
