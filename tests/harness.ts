/**
 * Runs the real program under Pulumi mocks and records every resource: type,
 * name, inputs (with secret markers kept), explicit dependsOn and parent.
 * Certificates and keys returned by the mocks are real ones made by openssl,
 * so anything the program computes from them (the discovery hash) is real.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../components/cluster";
import { parseClusterConfig, RawConfig } from "../components/config";
import { HostFacts } from "../components/facts";

/** The marker Pulumi puts on secret values it serialises. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const SIG_KEY = "4dabf18193072939515e22adb298388d";

export interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    dependsOn: string[];
    parent?: string;
    /** `additionalSecretOutputs` resource option. */
    secretOutputs?: string[];
}

/** Recognisable secret values fed to the program, so a test can look for leaks. */
export const SECRET_MARKERS = {
    /** A real ed25519 key made for this test process (PKCS#8 PEM); its second line is unique to this run. */
    sshKey: require("crypto").generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    tokenSecret: (name: string) => `tok${(hash(name) + "0000000000000").slice(0, 13)}`,
};

function hash(s: string): string {
    return require("crypto").createHash("sha256").update(s).digest("hex").replace(/[^a-z0-9]/g, "");
}

export function isSecretValue(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Every string found in `v` outside secret wrappers. */
export function plainStrings(v: unknown, out: string[] = []): string[] {
    if (typeof v === "string") out.push(v);
    else if (isSecretValue(v)) return out;
    else if (Array.isArray(v)) v.forEach((x) => plainStrings(x, out));
    else if (typeof v === "object" && v !== null) Object.values(v).forEach((x) => plainStrings(x, out));
    return out;
}

/** Every string found in `v`, secret or not (unwrapping secret markers). */
export function allStrings(v: unknown, out: string[] = []): string[] {
    if (typeof v === "string") out.push(v);
    else if (isSecretValue(v)) allStrings(v.value, out);
    else if (Array.isArray(v)) v.forEach((x) => allStrings(x, out));
    else if (typeof v === "object" && v !== null) Object.values(v).forEach((x) => allStrings(x, out));
    return out;
}

/** Unwrap secret markers everywhere (for reading values in assertions). */
export function reveal<T = unknown>(v: unknown): T {
    if (isSecretValue(v)) return reveal(v.value);
    if (Array.isArray(v)) return v.map((x) => reveal(x)) as T;
    if (typeof v === "object" && v !== null) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)])) as T;
    }
    return v as T;
}

let material: { caCert: string; caKey: string; rsaKey: string; rsaPub: string } | undefined;

/** A real ECDSA P-256 CA and an RSA key, made once per test process with openssl. */
export function testPki() {
    if (material) return material;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-pki-"));
    const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key");
    run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=kubernetes", "-days", "3650", "-out", "ca.crt");
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key");
    run("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub");
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
    material = { caCert: read("ca.crt"), caKey: read("ca.key"), rsaKey: read("sa.key"), rsaPub: read("sa.pub"), ...{ dir } };
    return material;
}

/** Facts a healthy host reports; tests override fields to inject problems. */
export function healthyFacts(node: string, family: "debian" | "rhel" = "debian"): HostFacts {
    const n = hash(node);
    return {
        node,
        os: family === "debian" ? { id: "debian", versionId: "12", family } : { id: "rocky", versionId: "9.4", family },
        kernel: "6.1.0-18-amd64",
        cgroup: "v2",
        cpus: 4,
        memoryMb: 8000,
        productUuid: `${n.slice(0, 8)}-${n.slice(8, 12)}-${n.slice(12, 16)}-${n.slice(16, 20)}-${n.slice(20, 32)}`,
        macs: [`52:54:00:${n.slice(0, 2)}:${n.slice(2, 4)}:${n.slice(4, 6)}`],
        swapOn: false,
        containerd: "",
        alreadyJoined: false,
    };
}

/** A remote command as the mocks see it, secrets revealed: what the command provider would run. */
export interface CommandCall {
    name: string;
    create: string;
    stdin?: string;
    connection: { host: string; port: number; user: string };
}

export interface RunOptions {
    /** Facts per host name; default healthyFacts. */
    facts?: (node: string) => HostFacts;
    /**
     * Run each remote command for real when the program registers it (the
     * Pulumi SDK registers a resource only after its dependencies registered,
     * so this follows the program's own order). Its stdout becomes the
     * command's `stdout` output. A rejection fails that resource, as a
     * failed command fails `pulumi up`.
     */
    execute?: (call: CommandCall) => Promise<{ stdout: string; stderr: string }>;
    /**
     * Run the real entry point instead of constructing the Cluster: `raw` is
     * set as stack config (`ssh` as a secret key, as `pulumi config set
     * --secret --path ssh.privateKey` makes it) and this loads `index.ts`
     * fresh (e.g. with jest.isolateModules), returning its exports.
     */
    loadIndex?: () => Record<string, unknown>;
}

export interface Run {
    resources: Recorded[];
    /** The entry point's exports (only with RunOptions.loadIndex). */
    exports?: Record<string, unknown>;
    /** Commands whose execution failed (only with RunOptions.execute). */
    failures: { name: string; error: Error }[];
    cluster: Cluster;
    /** Resolve an output of the program. */
    value<T>(o: pulumi.Output<T>): Promise<T>;
    secret<T>(o: pulumi.Output<T>): Promise<boolean>;
    byName(name: string): Recorded;
    commands(): Recorded[];
    /** Every resource `name` depends on, directly or through others (explicit dependsOn). */
    dependencies(name: string): Set<string>;
}

/** A typical raw config: 1 control plane + N workers. */
export function rawConfig(overrides: Partial<RawConfig> = {}, workers = 2): RawConfig {
    return {
        hosts: [
            { name: "cp-1", address: "192.0.2.10", internalAddress: "10.0.0.10", roles: ["control-plane"] },
            ...Array.from({ length: workers }, (_, i) => ({
                name: `worker-${i + 1}`, address: `192.0.2.${11 + i}`, internalAddress: `10.0.0.${11 + i}`, roles: ["worker"],
            })),
        ],
        ssh: { user: "ubuntu", privateKey: SECRET_MARKERS.sshKey },
        kubernetesVersion: "1.36.4",
        network: { podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/12", cni: "flannel" },
        ...overrides,
    };
}

/** Run the program (Cluster from a raw config) under mocks and wait until every resource is registered. */
export async function runProgram(raw: RawConfig, opts: RunOptions = {}): Promise<Run> {
    const pki = testPki();
    const resources: Recorded[] = [];
    const registered: Recorded[] = [];
    const failures: { name: string; error: Error }[] = [];
    let inflight = 0;
    const factsFor = opts.facts ?? ((n: string) => healthyFacts(n));

    await pulumi.runtime.setMocks({
        newResource(args: pulumi.runtime.MockResourceArgs) {
            // "tls:index/privateKey:PrivateKey" -> "tls:index:PrivateKey"
            const type = args.type.replace(/:index\/\w+:/, ":index:");
            registered.push({ type, name: args.name, inputs: args.inputs, dependsOn: [] });
            const state: Record<string, unknown> = { ...args.inputs };
            switch (type) {
                case "command:remote:Command":
                    if (opts.execute) {
                        const inputs = reveal<{ create: string; stdin?: string; connection: CommandCall["connection"] }>(args.inputs);
                        inflight++;
                        return opts.execute({ name: args.name, create: inputs.create, stdin: inputs.stdin, connection: inputs.connection })
                            .then((out) => ({ id: `${args.name}-id`, state: { ...state, ...out } }))
                            .catch((e) => {
                                failures.push({ name: args.name, error: e as Error });
                                throw e;
                            })
                            .finally(() => inflight--);
                    }
                    if (args.name.endsWith("-preflight")) {
                        state.stdout = JSON.stringify(factsFor(args.name.replace(/-preflight$/, ""))) + "\n";
                    } else {
                        state.stdout = "";
                    }
                    state.stderr = "";
                    break;
                case "tls:index:PrivateKey":
                    state.privateKeyPem = args.inputs.algorithm === "RSA" ? pki.rsaKey : pki.caKey;
                    state.publicKeyPem = args.inputs.algorithm === "RSA" ? pki.rsaPub : "EC-PUBLIC";
                    break;
                case "tls:index:SelfSignedCert":
                case "tls:index:LocallySignedCert":
                    state.certPem = pki.caCert;
                    break;
                case "tls:index:CertRequest":
                    state.certRequestPem = "CSR";
                    break;
                case "random:index:RandomString":
                    state.result = hash(args.name).slice(0, 6);
                    break;
                case "random:index:RandomPassword":
                    state.result = SECRET_MARKERS.tokenSecret(args.name);
                    break;
            }
            return { id: `${args.name}-id`, state };
        },
        call(args: pulumi.runtime.MockCallArgs) {
            return args.inputs;
        },
    }, "kubeadm-cluster", "test", false);

    const pending: Array<{ name: string; type: string; opts: pulumi.ResourceOptions }> = [];
    const record: pulumi.ResourceTransformation = (a) => {
        pending.push({ name: a.name, type: a.type, opts: a.opts });
        return undefined;
    };
    let cluster: Cluster | undefined;
    // (not named `exports`: that would shadow the CommonJS exports object the
    // compiled mocks above read SECRET_MARKERS from)
    let indexExports: Record<string, unknown> | undefined;
    if (opts.loadIndex) {
        const config: Record<string, string> = {};
        for (const [k, v] of Object.entries(raw)) {
            if (v !== undefined) config[`kubeadm-cluster:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
        }
        pulumi.runtime.setAllConfig(config, ["kubeadm-cluster:ssh"]);
        // (No stack resource under mocks to hang a transformation on, so
        // dependsOn is not recorded in this mode.)
        indexExports = opts.loadIndex();
    } else {
        const spec = parseClusterConfig(raw, "kubeadm-cluster");
        const sshPrivateKey = pulumi.secret((raw.ssh as { privateKey: string }).privateKey);
        cluster = new Cluster("kubeadm-cluster", { spec, secrets: { sshPrivateKey } }, { transformations: [record] });
    }

    // Wait until registration settles (outputs resolve through several turns).
    let last = -1;
    let stable = 0;
    while (stable < 5) {
        await new Promise((r) => setTimeout(r, 20));
        stable = registered.length === last && inflight === 0 ? stable + 1 : 0;
        last = registered.length;
    }
    const seen = new Map<string, Recorded>(registered.map((r) => [r.name, r]));
    for (const p of pending) {
        const rec = seen.get(p.name);
        if (!rec) continue;
        const deps = p.opts.dependsOn;
        const list = (Array.isArray(deps) ? deps : deps ? [deps] : []) as pulumi.Resource[];
        rec.dependsOn = list.map((d) => (d as unknown as { __name: string }).__name).sort();
        const parent = p.opts.parent as unknown as { __name?: string } | undefined;
        rec.parent = parent?.__name;
        rec.secretOutputs = (p.opts as pulumi.CustomResourceOptions).additionalSecretOutputs;
    }
    resources.push(...seen.values());

    const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => { resolve(v); return v; }));
    const secret = <T>(o: pulumi.Output<T>) => (o as unknown as { isSecret: Promise<boolean> }).isSecret;
    return {
        resources,
        failures,
        cluster: cluster!,
        exports: indexExports,
        value,
        secret,
        byName(name: string) {
            const r = resources.find((x) => x.name === name);
            if (!r) throw new Error(`no resource named ${name}; have: ${resources.map((x) => x.name).join(", ")}`);
            return r;
        },
        commands() {
            return resources.filter((r) => r.type === "command:remote:Command");
        },
        dependencies(name: string) {
            const out = new Set<string>();
            const visit = (n: string) => {
                for (const d of resources.find((r) => r.name === n)?.dependsOn ?? []) {
                    if (!out.has(d)) {
                        out.add(d);
                        visit(d);
                    }
                }
            };
            visit(name);
            return out;
        },
    };
}
