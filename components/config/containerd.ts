/** The `containerd` section: registry mirrors and trust, and runtime settings for restricted hosts. */
import * as crypto from "crypto";
import { ContainerdSpec, RegistrySpec } from "../model";
import { parseIPv4, parseIPv6 } from "../net";
import { Problems, isObject, isAbsent, child, item, show, describe, checkKeys } from "./problems";
import { isDnsName } from "./addresses";

const CONTAINERD_KEYS = ["registries", "restrictOomScoreAdj"] as const;
const REGISTRY_KEYS = ["registry", "mirrors", "ca", "skipVerify", "plainHttp"] as const;
const EXAMPLE = `e.g. {registry: registry.k8s.io, mirrors: ["https://mirror.example.com:5000"]} or {registry: "10.0.0.5:5443", ca: "-----BEGIN CERTIFICATE-----..."}`;

/** Why `s` is not a registry host[:port] (or `_default`), or undefined. */
function registryProblem(s: string): string | undefined {
    if (s === "_default") return undefined;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return `give the registry as images name it, without a scheme (e.g. "registry.k8s.io" or "10.0.0.5:5443")`;
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:/]+)(?::([0-9]{1,5}))?$/.exec(s);
    const host = m?.[1] ?? "";
    const hostOk = host === "localhost" || (host.startsWith("[") ? parseIPv6(host.slice(1, -1)) !== undefined : parseIPv4(host) !== undefined || isDnsName(host));
    if (!m || !hostOk || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
        return `is not a registry host[:port] (e.g. "registry.k8s.io", "docker.io", "10.0.0.5:5443", or "_default" for every registry)`;
    }
    return undefined;
}

function parseRegistry(raw: unknown, path: string, problems: Problems): RegistrySpec | undefined {
    if (!isObject(raw)) {
        problems.add(path, `must be an object with registry and mirrors and/or ca, got ${describe(raw)} (${EXAMPLE})`);
        return undefined;
    }
    checkKeys(raw, REGISTRY_KEYS, path, problems);
    const before = problems.count;
    const registry = raw["registry"];
    let name = "";
    if (typeof registry !== "string") {
        problems.add(child(path, "registry"), `is required: the registry as images name it (${EXAMPLE})`);
    } else {
        const why = registryProblem(registry);
        if (why) problems.add(child(path, "registry"), `${show(registry)} ${why}`);
        else name = registry;
    }
    const mirrors: string[] = [];
    const rawMirrors = raw["mirrors"];
    if (!isAbsent(rawMirrors)) {
        if (!Array.isArray(rawMirrors)) {
            problems.add(child(path, "mirrors"), `must be a list of mirror URLs, got ${describe(rawMirrors)}`);
        } else {
            rawMirrors.forEach((m, i) => {
                let url: URL | undefined;
                try {
                    url = typeof m === "string" ? new URL(m) : undefined;
                } catch {
                    url = undefined;
                }
                if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash || url.username) {
                    problems.add(item(child(path, "mirrors"), i), `${show(m)} is not a mirror URL: give http(s)://host[:port][/path] (a path is used as given: containerd's override_path)`);
                } else {
                    mirrors.push(m as string);
                }
            });
        }
    }
    const ca = raw["ca"];
    if (!isAbsent(ca)) {
        let ok = typeof ca === "string" && ca.includes("-----BEGIN CERTIFICATE-----");
        if (ok) {
            try {
                new crypto.X509Certificate(ca as string);
            } catch {
                ok = false;
            }
        }
        if (!ok) problems.add(child(path, "ca"), `must be a PEM certificate (the CA that signed the registry's and mirrors' certificates)`);
    }
    for (const flag of ["skipVerify", "plainHttp"] as const) {
        if (!isAbsent(raw[flag]) && typeof raw[flag] !== "boolean") problems.add(child(path, flag), `must be true or false, got ${describe(raw[flag])}`);
    }
    if (name === "_default" && raw["plainHttp"] === true) problems.add(child(path, "plainHttp"), `cannot apply to _default: list the mirrors with http:// instead`);
    if (problems.count !== before) return undefined;
    return {
        registry: name,
        mirrors,
        ...(typeof ca === "string" ? { ca } : {}),
        skipVerify: raw["skipVerify"] === true,
        plainHttp: raw["plainHttp"] === true,
    };
}

export function parseContainerd(raw: unknown, problems: Problems): ContainerdSpec {
    const result: ContainerdSpec = { registries: [], restrictOomScoreAdj: false };
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add("containerd", `must be an object with registries and restrictOomScoreAdj, got ${describe(raw)}`);
        return result;
    }
    checkKeys(raw, CONTAINERD_KEYS, "containerd", problems);
    const regs = raw["registries"];
    if (!isAbsent(regs)) {
        if (!Array.isArray(regs)) {
            problems.add("containerd.registries", `must be a list of registries, got ${describe(regs)} (${EXAMPLE})`);
        } else {
            regs.forEach((r, i) => {
                const reg = parseRegistry(r, item("containerd.registries", i), problems);
                if (!reg) return;
                const first = result.registries.findIndex((x) => x.registry === reg.registry);
                if (first >= 0) problems.add(item("containerd.registries", i), `${JSON.stringify(reg.registry)} is already configured in containerd.registries[${first}]: give each registry once`);
                else result.registries.push(reg);
            });
        }
    }
    const restrict = raw["restrictOomScoreAdj"];
    if (!isAbsent(restrict)) {
        if (typeof restrict !== "boolean") problems.add("containerd.restrictOomScoreAdj", `must be true or false, got ${describe(restrict)}`);
        else result.restrictOomScoreAdj = restrict;
    }
    return result;
}
