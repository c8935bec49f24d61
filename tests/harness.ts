/**
 * Runs the real program under Pulumi mocks and records every resource: type,
 * name, inputs (with secret markers kept), explicit dependsOn and parent.
 * Certificates and keys returned by the mocks are real ones made by openssl,
 * so anything the program computes from them (the discovery hash) is real.
 *
 * It is also a small model of the Pulumi engine's deployment semantics, so
 * that a sequence of runs (`up`, a config change, `up --replace X`, removing
 * a host, destroy) can be driven against real hosts (the host tier) or
 * inspected (the fast tier). What it models, from the Pulumi and
 * pulumi-command documentation and source (the README's "Lifecycle"):
 *   - a resource absent from the previous state is created (`create` runs);
 *   - one whose inputs changed is updated (`update` runs, or `create` when
 *     there is no `update`); one whose inputs are unchanged is left alone;
 *   - `ignoreChanges` properties keep their previous values;
 *   - a replaced resource (`--replace`) is created anew, and the OLD
 *     resource's `delete` runs at the end (create-before-delete);
 *   - resources no longer in the program are deleted at the end, in reverse
 *     dependency order, with the `delete` command stored in the state
 *     (a `retainOnDelete` resource is only dropped from the state);
 *   - the first failed operation stops new operations (no deletes either);
 *   - in a preview nothing runs: a created resource's computed outputs are
 *     unknown, an updated remote command keeps its previous stdout.
 * Not modelled (only the real engine shows them): the CLI's display, the
 * providers' own errors and retries, refresh, parallelism limits.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../components/cluster";
import { parseClusterConfig, RawConfig, sshKeys } from "../components/config";
import { HostFacts } from "../components/facts";

/** The marker Pulumi puts on secret values it serialises. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const SIG_KEY = "4dabf18193072939515e22adb298388d";

export interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    /** Explicit dependsOn (resource names), including resources an Output in dependsOn carries. */
    dependsOn: string[];
    parent?: string;
    /** `additionalSecretOutputs` resource option. */
    secretOutputs?: string[];
    /** `ignoreChanges` resource option. */
    ignoreChanges?: string[];
    /** `retainOnDelete` resource option: the engine drops it from the state without calling its provider's delete. */
    retainOnDelete?: boolean;
}

/** Recognisable secret values fed to the program, so a test can look for leaks. */
export const SECRET_MARKERS = {
    /** A real ed25519 key made for this test process (PKCS#8 PEM); its second line is unique to this run. */
    sshKey: require("crypto").generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    tokenSecret: (name: string) => `tok${(hash(name) + "0000000000000").slice(0, 13)}`,
};

/**
 * A real ed25519 private key in the OpenSSH format (openssh PROTOCOL.key),
 * made for this test process; with another `cipher` it is laid out as an
 * encrypted key (the private section is then not readable).
 */
export function openSshPrivateKey(cipher = "none"): string {
    const crypto = require("crypto") as typeof import("crypto");
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519");
    const seed = (privateKey.export({ type: "pkcs8", format: "der" }) as Buffer).subarray(-32);
    const pub = (publicKey.export({ type: "spki", format: "der" }) as Buffer).subarray(-32);
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
    const str = (b: Buffer | string) => { const x = Buffer.isBuffer(b) ? b : Buffer.from(b, "latin1"); return Buffer.concat([u32(x.length), x]); };
    const pubBlob = Buffer.concat([str("ssh-ed25519"), str(pub)]);
    const check = crypto.randomBytes(4);
    let priv = Buffer.concat([check, check, str("ssh-ed25519"), str(pub), str(Buffer.concat([seed, pub])), str("test")]);
    for (let i = 1; priv.length % 8 !== 0; i++) priv = Buffer.concat([priv, Buffer.from([i])]);
    const body = Buffer.concat([
        Buffer.from("openssh-key-v1\0", "latin1"), str(cipher), str(cipher === "none" ? "none" : "bcrypt"), str(cipher === "none" ? "" : "salt"),
        u32(1), str(pubBlob), str(priv),
    ]).toString("base64");
    const armour = (w: string) => `-----${w} OPENSSH PRIVATE KEY-----`;
    return [armour("BEGIN"), ...(body.match(/.{1,70}/g) ?? []), armour("END")].join("\n") + "\n";
}

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

/** The value Pulumi mocks use for an unknown (computed, not yet known) property. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

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

/** What the engine does with a resource in a run. */
export type Operation = "create" | "update" | "same" | "replace" | "delete" | "delete-replaced";

/** A remote command as the engine runs it, secrets revealed: which command text, with what stdin, where. */
export interface CommandCall {
    name: string;
    /** Which of the resource's commands runs. */
    field: "create" | "update" | "delete";
    /** The command text. */
    command: string;
    /** Why: the engine operation. */
    op: Operation;
    stdin?: string;
    connection: { host: string; port: number; user: string };
}

/** One resource in the engine's state after a run. */
export interface StateEntry {
    type: string;
    name: string;
    /** Inputs, secrets revealed (what the next run compares with). */
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
    dependsOn: string[];
    retainOnDelete?: boolean;
}

/** The engine's state between runs: resources by name. */
export type EngineState = ReadonlyMap<string, StateEntry>;

export interface RunOptions {
    /** Facts per host name; default healthyFacts. */
    facts?: (node: string) => HostFacts;
    /**
     * Run each remote command for real when the engine would (see the module
     * comment): its stdout becomes the command's `stdout` output. A rejection
     * fails that resource, as a failed command fails `pulumi up`.
     */
    execute?: (call: CommandCall) => Promise<{ stdout: string; stderr: string }>;
    /**
     * Run the real entry point instead of constructing the Cluster: `raw` is
     * set as stack config (`ssh` as a secret key, as `pulumi config set
     * --secret --path ssh.privateKey` makes it) and this loads `index.ts`
     * fresh (e.g. with jest.isolateModules), returning its exports.
     */
    loadIndex?: () => Record<string, unknown>;
    /** The state a previous run left (default: a new stack). */
    state?: EngineState;
    /** `pulumi up --replace` of these resource names. */
    replace?: string[];
    /** `pulumi preview`: nothing runs; created resources' computed outputs are unknown. */
    preview?: boolean;
    /** Config values set as secrets (default: ssh, when loadIndex is used). */
    secretKeys?: string[];
    /** Run the SSH reachability check for real (default: skipped, mock hosts do not exist). */
    checkReachability?: boolean;
    /** Make these (non-command) resources fail, as a failed add-on would (e.g. the CNI release). */
    failResources?: string[];
    /**
     * Keys and certificates made by openssl from each tls resource's inputs
     * (algorithm, subject, CA flag and usages, signed by the CA it names), one
     * distinct key per resource, as the tls provider makes them: for a real
     * cluster. Default: one shared test CA and key for every resource.
     */
    realPki?: boolean;
    /**
     * Play the provider of the non-command resources it handles (e.g. the
     * Kubernetes provider's Namespace and helm Release against a real API
     * server): called on create, update and replace, outside previews; returns
     * the outputs, or undefined for a type it leaves to the mocks. A rejection
     * fails that resource, as a failed provider operation fails `pulumi up`.
     */
    applyResource?: (call: ResourceCall) => Promise<Record<string, unknown> | undefined>;
    /** Delete a non-command resource for real (see applyResource); called in reverse dependency order. */
    deleteResource?: (entry: StateEntry) => Promise<void>;
}

/** A non-command resource as the engine hands it to its provider. */
export interface ResourceCall {
    type: string;
    name: string;
    op: Operation;
    /** Inputs, secrets revealed. */
    inputs: Record<string, unknown>;
}

export interface Run {
    resources: Recorded[];
    /** The entry point's exports (only with RunOptions.loadIndex). */
    exports?: Record<string, unknown>;
    /** Resources whose operation failed (the command failed or was not started after an earlier failure). */
    failures: { name: string; error: Error }[];
    /** Errors the program itself raised (a rejected registration: refused config, unreachable host, ...). */
    errors: Error[];
    /** What the engine did to each resource, in the order it happened. */
    operations: { name: string; op: Operation }[];
    /** The state after this run (feed it to the next run). */
    state: EngineState;
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

/** `news` with the value at `path` taken from `olds` (removed when olds has none), as ignoreChanges does. */
function resetPath(news: Record<string, unknown>, olds: Record<string, unknown>, path: string[]): Record<string, unknown> {
    const [key, ...rest] = path;
    const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
    if (rest.length === 0) {
        const out = { ...news };
        if (key in olds) out[key] = olds[key];
        else delete out[key];
        return out;
    }
    if (!isObj(news[key]) || !isObj(olds[key])) return news;
    return { ...news, [key]: resetPath(news[key] as Record<string, unknown>, olds[key] as Record<string, unknown>, rest) };
}

function sameJson(a: unknown, b: unknown): boolean {
    return JSON.stringify(a) === JSON.stringify(b);
}

/** Outputs the mocks make up for a resource that is created (no execute hook). */
function madeUpOutputs(type: string, name: string, inputs: Record<string, unknown>, factsFor: (n: string) => HostFacts, realPki = false): Record<string, unknown> {
    const pki = testPki();
    if (realPki && type.startsWith("tls:")) return realTls(type, inputs);
    switch (type) {
        case "command:remote:Command":
            return { stdout: name.endsWith("-preflight") ? JSON.stringify(factsFor(name.replace(/-preflight$/, ""))) + "\n" : "", stderr: "" };
        case "tls:index:PrivateKey":
            return inputs.algorithm === "RSA" ? { privateKeyPem: pki.rsaKey, publicKeyPem: pki.rsaPub } : { privateKeyPem: pki.caKey, publicKeyPem: "EC-PUBLIC" };
        case "tls:index:SelfSignedCert":
        case "tls:index:LocallySignedCert":
            return { certPem: pki.caCert };
        case "tls:index:CertRequest":
            return { certRequestPem: "CSR" };
        case "random:index:RandomString":
            return { result: hash(name).slice(0, 6) };
        case "random:index:RandomPassword":
            return { result: SECRET_MARKERS.tokenSecret(name) };
        default:
            return {};
    }
}

/** openssl's -subj form of a tls provider `subject` input. */
function subjectOf(subject: unknown): string {
    const s = (subject ?? {}) as Record<string, string | undefined>;
    const parts: [string, string | undefined][] = [["O", s.organization], ["OU", s.organizationalUnit], ["CN", s.commonName]];
    return parts.filter(([, v]) => v).map(([k, v]) => `/${k}=${v!.replace(/([/=\\])/g, "\\$1")}`).join("") || "/";
}

/** openssl extension lines for the tls provider's `allowedUses`. */
function usageExtensions(uses: string[], isCa: boolean): string {
    const key: Record<string, string> = {
        digital_signature: "digitalSignature", key_encipherment: "keyEncipherment", cert_signing: "keyCertSign", crl_signing: "cRLSign",
    };
    const ext: Record<string, string> = { server_auth: "serverAuth", client_auth: "clientAuth" };
    const lines = [`basicConstraints=critical,CA:${isCa ? "TRUE" : "FALSE"}`];
    const ku = uses.filter((u) => key[u]).map((u) => key[u]);
    const eku = uses.filter((u) => ext[u]).map((u) => ext[u]);
    if (ku.length) lines.push(`keyUsage=critical,${ku.join(",")}`);
    if (eku.length) lines.push(`extendedKeyUsage=${eku.join(",")}`);
    if (isCa) lines.push("subjectKeyIdentifier=hash");
    return lines.join("\n") + "\n";
}

/** What the tls provider returns for a resource, made by openssl from its inputs. */
function realTls(type: string, inputs: Record<string, unknown>): Record<string, unknown> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-tls-"));
    try {
        const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
        const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
        const write = (f: string, v: unknown) => fs.writeFileSync(path.join(dir, f), String(v), { mode: 0o600 });
        const days = String(Math.max(1, Math.ceil(Number(inputs.validityPeriodHours ?? 24) / 24)));
        switch (type) {
            case "tls:index:PrivateKey": {
                if (inputs.algorithm === "RSA") {
                    run("genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${inputs.rsaBits ?? 2048}`, "-out", "k.pem");
                    run("rsa", "-in", "k.pem", "-traditional", "-out", "k.rsa");
                    run("pkey", "-in", "k.pem", "-pubout", "-out", "k.pub");
                    return { privateKeyPem: read("k.rsa"), publicKeyPem: read("k.pub") };
                }
                if (inputs.algorithm !== "ECDSA" || inputs.ecdsaCurve !== "P256") throw new Error(`realPki: only RSA and ECDSA P256 keys, got ${JSON.stringify(inputs)}`);
                run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "k.pem");
                run("pkey", "-in", "k.pem", "-pubout", "-out", "k.pub");
                return { privateKeyPem: read("k.pem"), publicKeyPem: read("k.pub") };
            }
            case "tls:index:SelfSignedCert": {
                write("k.pem", inputs.privateKeyPem);
                write("req.cnf", `[req]\ndistinguished_name = dn\n[dn]\n[v3]\n${usageExtensions((inputs.allowedUses as string[]) ?? [], inputs.isCaCertificate === true)}`);
                run("req", "-x509", "-new", "-key", "k.pem", "-subj", subjectOf(inputs.subject), "-days", days,
                    "-config", "req.cnf", "-extensions", "v3", "-out", "c.pem");
                return { certPem: read("c.pem") };
            }
            case "tls:index:CertRequest": {
                write("k.pem", inputs.privateKeyPem);
                // Subject alternative names go into the request; the signer copies them (as the tls provider does).
                const sans = [...((inputs.dnsNames as string[]) ?? []).map((d) => `DNS:${d}`), ...((inputs.ipAddresses as string[]) ?? []).map((i) => `IP:${i}`)];
                write("req.cnf", `[req]\ndistinguished_name = dn\nreq_extensions = v3\n[dn]\n[v3]\n${sans.length ? `subjectAltName=${sans.join(",")}\n` : ""}`);
                run("req", "-new", "-key", "k.pem", "-subj", subjectOf(inputs.subject), "-config", "req.cnf", "-out", "r.pem");
                return { certRequestPem: read("r.pem") };
            }
            case "tls:index:LocallySignedCert": {
                write("r.pem", inputs.certRequestPem);
                write("ca.pem", inputs.caCertPem);
                write("ca.key", inputs.caPrivateKeyPem);
                write("ext.cnf", usageExtensions((inputs.allowedUses as string[]) ?? [], false));
                run("x509", "-req", "-in", "r.pem", "-copy_extensions", "copy", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", `0x${require("crypto").randomBytes(8).toString("hex")}`,
                    "-days", days, "-extfile", "ext.cnf", "-out", "c.pem");
                return { certPem: read("c.pem") };
            }
            default:
                throw new Error(`realPki: unknown tls type ${type}`);
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Computed outputs per type: what is unknown in a preview of a create. */
const COMPUTED: Record<string, string[]> = {
    "command:remote:Command": ["stdout", "stderr"],
    "tls:index:PrivateKey": ["privateKeyPem", "publicKeyPem"],
    "tls:index:SelfSignedCert": ["certPem"],
    "tls:index:LocallySignedCert": ["certPem"],
    "tls:index:CertRequest": ["certRequestPem"],
    "random:index:RandomString": ["result"],
    "random:index:RandomPassword": ["result"],
};

/** Run the program under mocks, as the engine model above would, and wait until every resource is registered and every operation done. */
export async function runProgram(raw: RawConfig, opts: RunOptions = {}): Promise<Run> {
    testPki();
    const prevState = opts.state ?? new Map<string, StateEntry>();
    const replace = new Set(opts.replace ?? []);
    const registered: Recorded[] = [];
    const failures: { name: string; error: Error }[] = [];
    const errors: Error[] = [];
    const operations: { name: string; op: Operation }[] = [];
    const outputsByName = new Map<string, Record<string, unknown>>();
    const replacedOld: StateEntry[] = [];
    let inflight = 0;
    let failed = false;
    const factsFor = opts.facts ?? ((n: string) => healthyFacts(n));
    const preview = opts.preview === true;
    const optsByName = new Map<string, pulumi.ResourceOptions>();

    // A failed registration (a refused change, a failed step) rejects the
    // registrations of everything depending on it, as unhandled rejections
    // (the language host reports them in a real run). Collect them for the
    // run instead of the test framework's handlers, which are put back at the end.
    const real: NodeJS.Process = (globalThis as { __realProcess?: NodeJS.Process }).__realProcess ?? process;
    const saved = real.listeners("unhandledRejection");
    real.removeAllListeners("unhandledRejection");
    const collect = (e: unknown) => errors.push(e instanceof Error ? e : new Error(String(e)));
    real.on("unhandledRejection", collect);

    /** One provider operation: not started after a failure; a failure stops new operations. */
    const track = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
        if (failed) throw new Error(`${name}: not started, an earlier step failed`);
        inflight++;
        try {
            return await f();
        } catch (e) {
            failed = true;
            failures.push({ name, error: e as Error });
            throw e;
        } finally {
            inflight--;
        }
    };
    const runCommand = async (name: string, field: CommandCall["field"], op: Operation, inputs: Record<string, unknown>) => {
        if (failed) throw new Error(`${name}: not started, an earlier step failed`);
        const i = inputs as { stdin?: string; connection: CommandCall["connection"] } & Record<string, unknown>;
        const text = i[field] as string | undefined;
        if (text === undefined) return { stdout: "", stderr: "" };
        return track(name, () => opts.execute!({ name, field, command: text, op, stdin: i.stdin, connection: i.connection }));
    };

    await pulumi.runtime.setMocks({
        newResource(args: pulumi.runtime.MockResourceArgs) {
            // "tls:index/privateKey:PrivateKey" -> "tls:index:PrivateKey"
            const type = args.type.replace(/:index\/\w+:/, ":index:");
            const rec: Recorded = { type, name: args.name, inputs: args.inputs, dependsOn: [] };
            registered.push(rec);
            const prev = prevState.get(args.name);
            const ignored = optsByName.get(args.name)?.ignoreChanges ?? [];
            let inputs = reveal<Record<string, unknown>>(args.inputs);
            if (prev) {
                // ignoreChanges: the old value at each (dotted) path, through secrets (pulumi PropertyPath.Reset)
                for (const p of ignored) inputs = resetPath(inputs, prev.inputs, p.split("."));
            }
            // The command provider keeps `connection` as ONE secret in its state
            // (provider:"secret"); a new connection that is not wholly secret
            // (a plain object with a secret key inside) compares as changed on
            // every run (pulumi-command#447, pulumi-go-provider#106).
            const isCommandType = type === "command:remote:Command";
            const connectionSecretnessDiffers = isCommandType && prev !== undefined && !isSecretValue((args.inputs as Record<string, unknown>).connection);
            let op: Operation;
            if (!prev) op = "create";
            else if (replace.has(args.name)) op = "replace";
            else if (sameJson(inputs, prev.inputs) && !connectionSecretnessDiffers) op = "same";
            else op = "update";
            operations.push({ name: args.name, op });

            const finish = (outs: Record<string, unknown>) => {
                const state = { ...inputs, ...outs };
                if (!preview) outputsByName.set(args.name, outs);
                return { id: `${args.name}-id`, state };
            };
            const isCommand = type === "command:remote:Command";
            // (a resource made to fail fails even when unchanged: what is tested is what its failure leaves behind)
            if (!preview && (opts.failResources ?? []).includes(args.name)) {
                failed = true;
                const e = new Error(`${args.name}: failed (the test made it fail)`);
                failures.push({ name: args.name, error: e });
                return Promise.reject(e);
            }
            if (op === "same") return finish(prev!.outputs);
            if (preview) {
                if (op === "update" && isCommand) return finish(prev!.outputs);
                if (op === "update") return finish(prev!.outputs);
                // create / replace: computed outputs are unknown
                const made = madeUpOutputs(type, args.name, inputs, factsFor);
                for (const k of COMPUTED[type] ?? []) delete made[k];
                return finish(made);
            }
            if (isCommand && opts.execute) {
                if (op === "replace") replacedOld.push(prev!);
                const field: CommandCall["field"] = op === "update" && inputs.update !== undefined ? "update" : "create";
                return runCommand(args.name, field, op, inputs).then((out) => finish(out));
            }
            if (!isCommand && opts.applyResource && !type.startsWith("tls:") && !type.startsWith("random:")) {
                const call: ResourceCall = { type, name: args.name, op, inputs };
                return track(args.name, () => opts.applyResource!(call)).then((outs) => {
                    if (outs) return finish(outs);
                    return finish(prev && op === "update" ? prev.outputs : madeUpOutputs(type, args.name, inputs, factsFor, opts.realPki));
                });
            }
            if (prev && op === "update") return finish(prev.outputs);
            return finish(madeUpOutputs(type, args.name, inputs, factsFor, opts.realPki));
        },
        call(args: pulumi.runtime.MockCallArgs) {
            return args.inputs;
        },
    }, "kubeadm-cluster", "test", preview);

    const record: pulumi.ResourceTransformation = (a) => {
        optsByName.set(a.name, a.opts);
        return undefined;
    };
    let cluster: Cluster | undefined;
    // (not named `exports`: that would shadow the CommonJS exports object the
    // compiled mocks above read SECRET_MARKERS from)
    let indexExports: Record<string, unknown> | undefined;
    try {
        if (opts.loadIndex) {
            const config: Record<string, string> = {};
            for (const [k, v] of Object.entries(raw)) {
                if (v !== undefined) config[`kubeadm-cluster:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
            }
            pulumi.runtime.setAllConfig(config, (opts.secretKeys ?? ["ssh"]).map((k) => `kubeadm-cluster:${k}`));
            // (No stack resource under mocks to hang a transformation on, so
            // dependsOn is not recorded in this mode.)
            indexExports = opts.loadIndex();
        } else {
            const spec = parseClusterConfig(raw, "kubeadm-cluster");
            const keys = sshKeys(raw);
            const secretsOf = (byHost: Record<string, string>) => Object.fromEntries(Object.entries(byHost).map(([h, k]) => [h, pulumi.secret(k)]));
            const dashboardKey = (raw.addons as { dashboard?: { tls?: { key?: string } } } | undefined)?.dashboard?.tls?.key;
            const secrets = {
                ...(dashboardKey ? { dashboardTlsKey: pulumi.secret(dashboardKey) } : {}),
                ...(keys.sshPrivateKey !== undefined ? { sshPrivateKey: pulumi.secret(keys.sshPrivateKey) } : {}),
                hostPrivateKeys: secretsOf(keys.hostPrivateKeys),
                bastionPrivateKeys: secretsOf(keys.bastionPrivateKeys),
            };
            cluster = new Cluster("kubeadm-cluster", {
                spec, secrets, skipReachabilityCheck: opts.checkReachability !== true,
            }, { transformations: [record] });
        }

        // The program runs until its gate (refused changes, unreachable
        // hosts) has settled; the engine deletes nothing before the program ends.
        if (cluster) {
            await (cluster.ready as unknown as { promise(): Promise<unknown> }).promise().catch(() => undefined);
        }
        // Wait until registration settles (outputs resolve through several turns).
        let last = -1;
        let stable = 0;
        while (stable < 5) {
            await new Promise((r) => setTimeout(r, 20));
            stable = registered.length === last && inflight === 0 ? stable + 1 : 0;
            last = registered.length;
        }
    } finally {
        // (rejections of dependents arrive a few turns after the one that failed)
        await new Promise((r) => setTimeout(r, 150));
        real.off("unhandledRejection", collect);
        for (const l of saved) real.on("unhandledRejection", l as (...args: unknown[]) => void);
    }

    const seen = new Map<string, Recorded>(registered.map((r) => [r.name, r]));
    const nameOf = (d: unknown) => (d as { __name?: string } | undefined)?.__name;
    for (const [name, o] of optsByName) {
        const rec = seen.get(name);
        if (!rec) continue;
        rec.dependsOn = (await resolveDependsOn(o.dependsOn)).map(nameOf).filter((n): n is string => !!n).sort();
        rec.dependsOn = [...new Set(rec.dependsOn)];
        rec.parent = nameOf(o.parent);
        rec.secretOutputs = (o as pulumi.CustomResourceOptions).additionalSecretOutputs;
        rec.ignoreChanges = o.ignoreChanges;
        rec.retainOnDelete = o.retainOnDelete;
    }
    const resources = [...seen.values()];

    // The new state, as the engine keeps it: every operation that succeeded,
    // the previous entry where one failed or never started (a failed create
    // leaves nothing). Then the deletes: resources no longer in the program
    // and the old halves of replacements, in reverse dependency order.
    const state = new Map<string, StateEntry>();
    const failedNames = new Set(failures.map((f) => f.name));
    for (const r of resources) {
        const prev = prevState.get(r.name);
        if (failedNames.has(r.name) || !outputsByName.has(r.name)) {
            if (prev) state.set(r.name, prev);
            continue;
        }
        let inputs = reveal<Record<string, unknown>>(r.inputs);
        if (prev) for (const p of r.ignoreChanges ?? []) if (p in prev.inputs) inputs = { ...inputs, [p]: prev.inputs[p] };
        state.set(r.name, { type: r.type, name: r.name, inputs, outputs: outputsByName.get(r.name) ?? {}, dependsOn: r.dependsOn, ...(r.retainOnDelete ? { retainOnDelete: true } : {}) });
    }
    const gone = [...prevState.values()].filter((e) => !seen.has(e.name));
    if (!preview && errors.length === 0 && !failed) {
        for (const e of gone) operations.push({ name: e.name, op: "delete" });
        for (const e of replacedOld) operations.push({ name: e.name, op: "delete-replaced" });
        if (opts.execute) {
            await runDeletes(
                [...gone.map((e) => ({ entry: e, op: "delete" as const })), ...replacedOld.map((e) => ({ entry: e, op: "delete-replaced" as const }))],
                prevState,
                (e, op) => e.type === "command:remote:Command"
                    ? runCommand(e.name, "delete", op, e.inputs).then(() => undefined)
                    : opts.deleteResource ? track(e.name, () => opts.deleteResource!(e)) : Promise.resolve(),
            );
        }
    } else if (preview) {
        for (const e of gone) operations.push({ name: e.name, op: "delete" });
    } else {
        // A failed run deletes nothing: the resources stay in the state.
        for (const e of gone) state.set(e.name, e);
    }

    const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => { resolve(v); return v; }));
    const secret = <T>(o: pulumi.Output<T>) => (o as unknown as { isSecret: Promise<boolean> }).isSecret;
    return {
        resources,
        failures,
        errors,
        operations,
        state,
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

/** The resources a dependsOn option names, including those carried by Outputs in it. */
async function resolveDependsOn(d: unknown): Promise<unknown[]> {
    if (!d) return [];
    if (Array.isArray(d)) return (await Promise.all(d.map(resolveDependsOn))).flat();
    if (d instanceof Promise) return resolveDependsOn(await d.catch(() => undefined));
    if (pulumi.Output.isInstance(d)) {
        const o = d as pulumi.Output<unknown> & { allResources?: () => Promise<Set<pulumi.Resource>> };
        const carried = o.allResources ? [...(await o.allResources())] : [];
        let value: unknown;
        try {
            value = await (o as unknown as { promise(): Promise<unknown> }).promise();
        } catch {
            value = undefined;
        }
        return [...(await resolveDependsOn(value)), ...carried];
    }
    return [d];
}

/**
 * Run deletes as the engine does: a resource is deleted once nothing that
 * depends on it is still waiting to be deleted (dependencies from the state
 * the deletes belong to). Independent deletes run in parallel.
 */
async function runDeletes(
    items: { entry: StateEntry; op: "delete" | "delete-replaced" }[],
    prevState: EngineState,
    del: (e: StateEntry, op: "delete" | "delete-replaced") => Promise<void>,
): Promise<void> {
    const deps = (name: string) => {
        const out = new Set<string>();
        const visit = (n: string) => {
            for (const d of prevState.get(n)?.dependsOn ?? []) if (!out.has(d)) { out.add(d); visit(d); }
        };
        visit(name);
        return out;
    };
    const pending = new Map(items.map((i) => [`${i.op}:${i.entry.name}`, i]));
    while (pending.size > 0) {
        const waiting = [...pending.values()];
        const ready = waiting.filter((i) => !waiting.some((o) => o !== i && deps(o.entry.name).has(i.entry.name)));
        if (ready.length === 0) throw new Error(`delete order has a cycle among ${[...pending.keys()].join(", ")}`);
        for (const i of ready) pending.delete(`${i.op}:${i.entry.name}`);
        await Promise.all(ready.map((i) => (i.entry.retainOnDelete ? Promise.resolve() : del(i.entry, i.op))));
    }
}

/**
 * `pulumi destroy`: every resource of the state deleted, in reverse
 * dependency order, with the delete command stored in the state.
 */
export async function destroy(state: EngineState, execute: RunOptions["execute"], deleteResource?: RunOptions["deleteResource"]): Promise<{ name: string; op: Operation }[]> {
    const done: { name: string; op: Operation }[] = [];
    await runDeletes([...state.values()].map((entry) => ({ entry, op: "delete" as const })), state, async (e) => {
        if (e.type !== "command:remote:Command") {
            if (deleteResource) {
                done.push({ name: e.name, op: "delete" });
                await deleteResource(e);
            }
            return;
        }
        done.push({ name: e.name, op: "delete" });
        const i = e.inputs as { delete?: string; stdin?: string; connection: CommandCall["connection"] };
        if (i.delete !== undefined && execute) {
            await execute({ name: e.name, field: "delete", command: i.delete, op: "delete", stdin: i.stdin, connection: i.connection });
        }
    });
    return done;
}

/**
 * The error the command provider (pulumi-command 1.2.1, remote/commandOutputs.go)
 * reports when a command fails: `<exit>: running "<command text>":\n<stdout+stderr>`.
 */
export function providerError(command: string, exitStatus: number, output: string): string {
    return `Process exited with status ${exitStatus}: running ${JSON.stringify(command)}:\n${output}`;
}
