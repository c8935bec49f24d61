/**
 * The resource graph of the real program under Pulumi mocks: which steps
 * exist for which host, in which order, on which host they run, and that
 * secrets stay secrets.
 */
import { Recorded, Run, SECRET_MARKERS, allStrings, isSecretValue, plainStrings, rawConfig, reveal, runProgram, testPki } from "./harness";

function conn(r: Recorded): { host: string; user: string } {
    return reveal(r.inputs.connection);
}

function text(r: Recorded, field: "create" | "delete"): string {
    return reveal<string>(r.inputs[field]);
}

describe("1 control plane + 2 workers", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(rawConfig());
    });

    test("every host gets scripts, preflight, prepare; init on the first control plane; each worker token -> join -> node", () => {
        const names = run.commands().map((c) => c.name).sort();
        expect(names).toEqual([
            "cp-1-gateway-api", "cp-1-init", "cp-1-node", "cp-1-preflight", "cp-1-prepare", "cp-1-scripts", "cp-1-smoke-test",
            "worker-1-join", "worker-1-node", "worker-1-preflight", "worker-1-prepare", "worker-1-scripts", "worker-1-token",
            "worker-2-join", "worker-2-node", "worker-2-preflight", "worker-2-prepare", "worker-2-scripts", "worker-2-token",
        ]);
    });

    test("explicit order: scripts -> preflight -> prepare -> init -> token -> join -> node", () => {
        const settings = ["cp-1-settings", "kubeadm-cluster-settings", "worker-1-settings", "worker-2-settings"];
        expect(run.byName("cp-1-scripts").dependsOn).toEqual(settings);
        expect(run.byName("cp-1-preflight").dependsOn).toEqual(["cp-1-scripts"]);
        expect(run.byName("cp-1-prepare").dependsOn).toEqual(["cp-1-preflight"]);
        expect(run.byName("cp-1-init").dependsOn).toEqual(["cp-1-prepare"]);
        for (const w of ["worker-1", "worker-2"]) {
            expect(run.byName(`${w}-preflight`).dependsOn).toEqual([`${w}-scripts`]);
            expect(run.byName(`${w}-token`).dependsOn).toEqual(["cp-1-init", `${w}-prepare`]);
            expect(run.byName(`${w}-join`).dependsOn).toEqual([`${w}-prepare`, `${w}-token`]);
            expect(run.byName(`${w}-node`).dependsOn).toEqual([`${w}-join`]);
        }
        // prepare also waits for the preflight of the hosts listed before (the duplicate-identity check)
        expect(run.byName("worker-1-prepare").dependsOn).toEqual(["cp-1-preflight", "worker-1-preflight"]);
        expect(run.byName("worker-2-prepare").dependsOn).toEqual(["cp-1-preflight", "worker-1-preflight", "worker-2-preflight"]);
    });

    test("workers do not wait for each other; the provider waits for init; the CNI for every node", () => {
        // The only waits across hosts: the settings check, and the preflight of
        // hosts listed earlier (the duplicate-identity check before prepare).
        const w1 = run.dependencies("worker-1-node");
        expect(changingSteps([...w1]).filter((n) => n.startsWith("worker-2") || n.includes("cni"))).toEqual([]);
        expect(w1.has("cp-1-init")).toBe(true);
        const w2 = run.dependencies("worker-2-join");
        expect(changingSteps([...w2]).filter((n) => n.startsWith("worker-1-"))).toEqual([]);

        expect(run.byName("kubeadm-cluster-k8s").dependsOn).toEqual(["cp-1-init"]);
        const release = run.byName("kubeadm-cluster-cni-release");
        expect(release.type).toBe("kubernetes:helm.sh/v3:Release");
        expect(release.dependsOn).toEqual(["cp-1-node", "kubeadm-cluster-cni-namespace", "worker-1-node", "worker-2-node"]);
        expect(run.byName("kubeadm-cluster-cni-namespace").dependsOn).toEqual(["cp-1-node", "worker-1-node", "worker-2-node"]);
        // the pod network goes with the cluster (destroy resets every node): never uninstalled through the API first
        expect(release.retainOnDelete).toBe(true);
        expect(run.byName("kubeadm-cluster-cni-namespace").retainOnDelete).toBe(true);
    });

    test("token and node steps run on the first control plane, join on the worker itself", () => {
        expect(conn(run.byName("worker-1-token")).host).toBe("192.0.2.10");
        expect(conn(run.byName("worker-1-node")).host).toBe("192.0.2.10");
        expect(conn(run.byName("worker-1-join")).host).toBe("192.0.2.11");
        expect(conn(run.byName("worker-2-prepare")).host).toBe("192.0.2.12");
    });

    test("non-root user: every step goes through sudo -n", () => {
        for (const c of run.commands()) {
            expect(conn(c).user).toBe("ubuntu");
            expect(text(c, "create")).toContain("sudo -n");
        }
    });

    test("teardown steps: drain on the control plane, reset on the node, forget the node last, scripts removed after all", () => {
        expect(text(run.byName("worker-1-node"), "delete")).toContain('source "$KP_LIB/drain.sh"');
        expect(text(run.byName("worker-1-join"), "delete")).toContain('source "$KP_LIB/reset.sh"');
        expect(text(run.byName("worker-1-token"), "delete")).toContain('source "$KP_LIB/forget-node.sh"');
        expect(text(run.byName("cp-1-init"), "delete")).toContain('source "$KP_LIB/reset.sh"');
        expect(text(run.byName("worker-1-scripts"), "delete")).toContain('source "$KP_LIB/uninstall.sh"');
        for (const step of ["cp-1-preflight", "cp-1-prepare"]) {
            expect(run.byName(step).inputs.delete).toBeUndefined();
            expect(run.byName(step).inputs.update).toBeUndefined();
        }
    });

    test("init renders a v1beta4 config with the right endpoint, subnets and SANs", () => {
        const init = text(run.byName("cp-1-init"), "create");
        expect(init).toContain("apiVersion: kubeadm.k8s.io/v1beta4");
        expect(init).toContain("controlPlaneEndpoint: 10.0.0.10:6443");
        expect(init).toContain("podSubnet: 10.244.0.0/16");
        expect(init).toContain("serviceSubnet: 10.96.0.0/12");
        expect(init).toContain("kubernetesVersion: v1.36.4");
        expect(init).toContain("- 192.0.2.10");
        expect(init).toContain("cgroupDriver: systemd");
        // a dedicated control plane keeps kubeadm's default taint
        expect(init).not.toContain("taints: []");
    });

    test("the join gets the discovery hash of the CA the PKI produced, the CA and its token on stdin; the endpoint in its text", () => {
        const hash = require("../components/pki").discoveryHash(testPki().caCert);
        const join = run.byName("worker-1-join");
        const files = bundleFiles(reveal<string>(join.inputs.stdin));
        expect(files["ca-cert-hash"]).toBe(hash);
        expect(files["pki/ca.crt"]).toBe(testPki().caCert);
        expect(files.token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
        expect(text(join, "create")).toContain("readonly API_ENDPOINT='10.0.0.10:6443'");
        expect(text(join, "create")).not.toContain("discovery:");
    });

    test("prepare is the same OS-agnostic script for every host (the family is picked on the host)", () => {
        const body = (n: string) => text(run.byName(n), "create").split("\n").slice(3).join("\n").replace(/IS_CONTROL_PLANE='(true|false)'/, "");
        expect(text(run.byName("cp-1-prepare"), "create")).toContain('source "$KP_LIB/prepare.sh"');
        expect(body("worker-1-prepare").replace(/worker-1/g, "X")).toEqual(body("worker-2-prepare").replace(/worker-2/g, "X"));
    });

    test("the CNI gets podSubnet as its pod CIDR", () => {
        const release = reveal<{ values: { podCidr: string }; chart: string; version: string }>(run.byName("kubeadm-cluster-cni-release").inputs);
        expect(release.chart).toBe("flannel");
        expect(release.values.podCidr).toBe("10.244.0.0/16");
        const ns = reveal<{ metadata: { labels: Record<string, string> } }>(run.byName("kubeadm-cluster-cni-namespace").inputs);
        expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    });

    describe("secrets", () => {
        let secrets: string[];
        beforeAll(() => {
            const pki = testPki();
            const tokenSecrets = run.resources
                .filter((r) => r.type === "random:index:RandomPassword")
                .map((r) => SECRET_MARKERS.tokenSecret(r.name));
            expect(tokenSecrets.length).toBe(2);
            secrets = [SECRET_MARKERS.sshKey.split("\n")[1], keyBody(pki.caKey), keyBody(pki.rsaKey), ...tokenSecrets];
        });

        test("no secret value appears in plain text in any resource input", () => {
            for (const r of run.resources) {
                for (const s of plainStrings(r.inputs)) {
                    for (const secret of secrets) {
                        if (s.includes(secret)) {
                            throw new Error(`${r.name} (${r.type}) has a secret in plain text: ${secret.slice(0, 12)}...`);
                        }
                    }
                }
            }
        });

        test("no secret value appears in any command text, even inside secret wrappers", () => {
            for (const c of run.commands()) {
                for (const field of ["create", "delete"] as const) {
                    const t = allStrings(c.inputs[field]).join("\n");
                    for (const secret of secrets) expect(t.includes(secret)).toBe(false);
                }
            }
        });

        test("secrets reach the hosts on stdin, as Pulumi secrets", () => {
            for (const name of ["cp-1-init", "worker-1-token", "worker-1-join"]) {
                const r = run.byName(name);
                expect(isSecretValue(r.inputs.stdin)).toBe(true);
                expect(r.secretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
                // scripts never print secrets: their progress is shown, their outputs kept secret in the state
                expect(reveal<{ logging: string }>(r.inputs).logging).toBe("stdoutAndStderr");
            }
            // The init bundle carries the CA key; the worker bundle only the token, the public CA and its own kubelet serving pair.
            const initBundle = reveal<string>(run.byName("cp-1-init").inputs.stdin);
            expect(initBundle).toContain("pki/ca.key ");
            const joinBundle = reveal<string>(run.byName("worker-1-join").inputs.stdin);
            expect(Object.keys(bundleFiles(joinBundle))).toEqual(["ca-cert-hash", "kubelet/serving.crt", "kubelet/serving.key", "pki/ca.crt", "token"]);
        });

        test("the SSH key is a secret in every connection; the kubeconfig is a secret", async () => {
            for (const c of run.commands()) {
                const connection = c.inputs.connection as Record<string, unknown>;
                expect(isSecretValue(connection) || isSecretValue(connection.privateKey)).toBe(true);
            }
            expect(isSecretValue(run.byName("kubeadm-cluster-k8s").inputs.kubeconfig)).toBe(true);
            expect(await run.secret(run.cluster.kubeconfig)).toBe(true);
        });

        test("the kubeconfig uses the generated admin credentials and the API address", async () => {
            const kubeconfig = require("yaml").parse(await run.value(run.cluster.kubeconfig));
            expect(kubeconfig.clusters[0].cluster.server).toBe("https://192.0.2.10:6443");
            expect(Buffer.from(kubeconfig.users[0].user["client-key-data"], "base64").toString()).toBe(testPki().caKey);
        });
    });
});

describe("a single host with both roles", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(rawConfig({
            hosts: [{ name: "solo", address: "192.0.2.20", roles: ["control-plane", "worker"] }],
            ssh: { privateKey: SECRET_MARKERS.sshKey },
        }));
    });

    test("only scripts, preflight, prepare, init and its node step (labels); no join steps", () => {
        expect(run.commands().map((c) => c.name).sort()).toEqual(["solo-gateway-api", "solo-init", "solo-node", "solo-preflight", "solo-prepare", "solo-scripts", "solo-smoke-test"]);
    });

    test("the node is schedulable: no control-plane taint", () => {
        expect(text(run.byName("solo-init"), "create")).toContain("taints: []");
    });

    test("root user: no sudo", () => {
        expect(conn(run.byName("solo-init")).user).toBe("root");
        expect(text(run.byName("solo-init"), "create")).not.toContain("sudo -n");
    });

    test("the API endpoint defaults to the host's address", () => {
        expect(run.cluster.apiEndpoint).toBe("https://192.0.2.20:6443");
    });
});

describe("three control planes", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(rawConfig({
            hosts: [1, 2, 3].map((i) => ({ name: `cp-${i}`, address: `192.0.2.${10 + i}`, roles: ["control-plane"] }))
                .concat([{ name: "worker-1", address: "192.0.2.30", roles: ["worker"] }]),
            apiServer: { address: "192.0.2.100" },
        }));
    });

    test("control planes join one at a time, after init", () => {
        expect(run.byName("cp-2-token").dependsOn).toEqual(["cp-1-init", "cp-2-prepare"]);
        expect(run.byName("cp-3-token").dependsOn).toEqual(["cp-1-init", "cp-2-node", "cp-3-prepare"]);
        // (the first control plane's labels are not a reason to wait)
        expect(run.dependencies("cp-3-join").has("cp-2-join")).toBe(true);
    });

    test("workers do not wait for the other control planes", () => {
        expect(changingSteps([...run.dependencies("worker-1-join")]).filter((n) => n.startsWith("cp-2") || n.startsWith("cp-3"))).toEqual([]);
    });

    test("joining control planes get the shared CA files on stdin and join with controlPlane set", () => {
        const cp2 = run.byName("cp-2-join");
        const files = Object.keys(bundleFiles(reveal<string>(cp2.inputs.stdin)));
        expect(files).toEqual([
            "ca-cert-hash", "kubelet/serving.crt", "kubelet/serving.key", "pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/etcd/ca.key",
            "pki/front-proxy-ca.crt", "pki/front-proxy-ca.key", "pki/sa.key", "pki/sa.pub", "token",
        ]);
        expect(text(cp2, "create")).toContain("controlPlane:");
        expect(text(cp2, "create")).toContain("readonly API_ENDPOINT='192.0.2.100:6443'");
    });

    test("the stable API address is the control-plane endpoint and a SAN; other control planes' addresses are not (kubeadm adds each one's own)", () => {
        const init = text(run.byName("cp-1-init"), "create");
        expect(init).toContain("controlPlaneEndpoint: 192.0.2.100:6443");
        expect(init).toContain("- 192.0.2.100");
        expect(init).not.toContain("- 192.0.2.13");
    });
});


describe("adding a host", () => {
    test("changes nothing for the existing hosts: only the new host's steps are new", async () => {
        const inputsByName = (run: Run) => new Map(run.resources.map((r) => [r.name, JSON.stringify(reveal(r.inputs))]));
        const before = inputsByName(await runProgram(rawConfig({}, 2)));
        const after = inputsByName(await runProgram(rawConfig({}, 3)));
        const changed = [...before.keys()].filter((n) => after.get(n) !== before.get(n));
        // Only what spans the nodes: the ingress runs on every worker (a new one too), and the smoke test checks every node.
        expect(changed.sort()).toEqual(["cp-1-smoke-test", "kubeadm-cluster-addons-traefik"]);
        const added = [...after.keys()].filter((n) => !before.has(n)).sort();
        expect(added).toEqual([
            "worker-3", "worker-3-bootstrap-token-id", "worker-3-bootstrap-token-secret",
            "worker-3-join", "worker-3-kubelet-serving-cert", "worker-3-kubelet-serving-csr", "worker-3-kubelet-serving-key",
            "worker-3-node", "worker-3-preflight", "worker-3-prepare", "worker-3-scripts", "worker-3-settings", "worker-3-token",
        ]);
    });

    test("removing a worker removes exactly its steps (their deletes drain, reset and forget it)", async () => {
        const names = (run: Run) => new Set(run.resources.map((r) => r.name));
        const three = names(await runProgram(rawConfig({}, 3)));
        const two = names(await runProgram(rawConfig({}, 2)));
        expect([...three].filter((n) => !two.has(n)).every((n) => n.startsWith("worker-3"))).toBe(true);
    });
});

describe("re-running the program", () => {
    test("gives byte-identical command inputs (a second `pulumi up` changes nothing)", async () => {
        const fingerprint = (run: Run) => run.commands()
            .map((c) => JSON.stringify([c.name, reveal(c.inputs)]))
            .sort();
        const first = fingerprint(await runProgram(rawConfig()));
        const second = fingerprint(await runProgram(rawConfig()));
        expect(second).toEqual(first);
        expect(first.length).toBe(19);
    });
});

/** Steps that change a host (not the read-only checks and records every host waits for). */
function changingSteps(names: string[]): string[] {
    return names.filter((n) => !/-(settings|scripts|preflight)$/.test(n));
}

/** The files of a stdin bundle (`<path> <base64>` lines). */
function bundleFiles(bundle: string): Record<string, string> {
    return Object.fromEntries(bundle.split("\n").filter(Boolean).map((l) => {
        const [p, data] = l.split(" ");
        return [p, Buffer.from(data, "base64").toString("utf8")];
    }));
}

function keyBody(pem: string): string {
    // A distinctive line from the middle of the PEM body.
    const lines = pem.trim().split("\n");
    return lines[Math.floor(lines.length / 2)];
}
