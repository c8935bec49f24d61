/**
 * What the real-cluster tier serves to its sandbox hosts from this machine, on
 * the sandbox bridge's gateway address only: the flat apt repository of
 * tests/cluster/build.sh over HTTP, and its OCI registry over HTTPS with a CA
 * made for the run.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
export { serveDirectory } from "../hosts/serve";

export const REPO_ROOT = path.resolve(__dirname, "../..");
export const BUILD_SCRIPT = path.join(__dirname, "build.sh");

/** Outputs of build.sh (see its header). */
export interface Built {
    cache: string;
    bin: (tool: string, file?: string) => string;
    repo: string;
    registryData: string;
    chart: string;
    /** metrics-server's chart, from its Go module zip. */
    metricsServerChart: string;
    images: string[];
    versions: Record<string, string>;
}

/** Run build.sh (cached after the first run) and describe what it built. */
export function build(): Built {
    const out = execFileSync("bash", [BUILD_SCRIPT], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 });
    const cache = out.trim().split("\n").pop()!;
    const versions: Record<string, string> = {};
    for (const line of fs.readFileSync(path.join(cache, "versions.env"), "utf8").split("\n")) {
        const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
        if (m) versions[m[1]] = m[2];
    }
    return {
        cache,
        bin: (tool, file = tool) => path.join(cache, "bin", tool, file),
        repo: path.join(cache, "repo"),
        registryData: path.join(cache, "registry", "data"),
        chart: path.join(cache, "charts", "kube-flannel"),
        metricsServerChart: path.join(cache, "charts", "metrics-server"),
        images: fs.readFileSync(path.join(cache, "images.txt"), "utf8").trim().split("\n"),
        versions,
    };
}


/** A CA for this run and a server certificate for `ip`, made with openssl. */
export function makeRegistryPki(ip: string): { dir: string; caCert: string; cert: string; key: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kp-cluster-pki-"));
    const o = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=kubeadm-pulumi test registry CA");
    o("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "registry.key", "-out", "registry.csr",
        "-subj", `/CN=${ip}`);
    fs.writeFileSync(path.join(dir, "ext.cnf"), `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\n`);
    o("x509", "-req", "-in", "registry.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "registry.crt",
        "-days", "2", "-extfile", "ext.cnf");
    return { dir, caCert: fs.readFileSync(path.join(dir, "ca.crt"), "utf8"), cert: path.join(dir, "registry.crt"), key: path.join(dir, "registry.key") };
}

export interface Registry {
    /** host:port, as image references and containerd's certs.d name it. */
    host: string;
    process: ChildProcess;
    stop(): Promise<void>;
}

/** Serve build.sh's registry storage with TLS on `ip`:`port` (distribution's `registry serve`). */
export async function startRegistry(b: Built, ip: string, port: number, pki: { dir: string; cert: string; key: string }): Promise<Registry> {
    const config = path.join(pki.dir, "registry.yml");
    fs.writeFileSync(config, [
        "version: 0.1",
        "log: { level: warn }",
        `storage: { filesystem: { rootdirectory: ${b.registryData} }, maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } } }`,
        `http: { addr: "${ip}:${port}", tls: { certificate: ${pki.cert}, key: ${pki.key} } }`,
        "",
    ].join("\n"));
    const log = fs.openSync(path.join(pki.dir, "registry.log"), "w");
    const child = spawn(b.bin("registry"), ["serve", config], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    const host = `${ip}:${port}`;
    const ca = path.join(pki.dir, "ca.crt");
    for (let i = 0; ; i++) {
        try {
            execFileSync("curl", ["-fsS", "--cacert", ca, "-o", "/dev/null", `https://${host}/v2/`], { stdio: "ignore" });
            break;
        } catch {
            if (i > 100 || child.exitCode !== null)
                throw new Error(`registry on ${host} did not start: ${fs.readFileSync(path.join(pki.dir, "registry.log"), "utf8")}`);
            await new Promise((r) => setTimeout(r, 100));
        }
    }
    return {
        host,
        process: child,
        stop: () =>
            new Promise<void>((resolve) => {
                if (child.exitCode !== null || child.signalCode !== null) return resolve();
                child.once("exit", () => resolve());
                child.kill("SIGTERM");
            }),
    };
}

/** Wall-clock phases, for the README. */
export class Timings {
    private readonly rows: [string, number][] = [];
    async time<T>(name: string, f: () => Promise<T> | T): Promise<T> {
        const t = Date.now();
        try {
            return await f();
        } finally {
            this.rows.push([name, (Date.now() - t) / 1000]);
        }
    }
    add(name: string, seconds: number): void {
        this.rows.push([name, seconds]);
    }
    toString(): string {
        return this.rows.map(([n, s]) => `  ${n.padEnd(48)} ${s.toFixed(1).padStart(7)} s`).join("\n");
    }
}
