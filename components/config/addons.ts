/**
 * The `addons` section: the ingress controller, the dashboard, metrics-server,
 * the post-install smoke test, and the registry every add-on image comes from.
 * Cross-section rules (ingress nodes name hosts, the pod network exists) are
 * checked in index.ts with the hosts and network at hand.
 */
import * as fs from "fs";
import * as crypto from "crypto";
import { DASHBOARD_ACCESS, DashboardAccess, INGRESS_CONTROLLERS, INGRESS_EXPOSURES, IngressController, IngressExposure } from "../model";
import { GATEWAY_API } from "../versions";
import { isDnsName, isDnsLabel } from "./addresses";
import { Problems, isObject, isAbsent, child, show, describe, checkKeys, quoteList, parsePort } from "./problems";

const ADDONS_KEYS = ["ingress", "dashboard", "metricsServer", "smokeTest", "imageRegistry"] as const;
const INGRESS_KEYS = ["enabled", "controller", "exposure", "nodes", "ports", "gatewayApi"] as const;
const DASHBOARD_KEYS = ["enabled", "host", "access", "tls"] as const;

/** Default ports of each exposure: the nodes' 80/443, or NodePorts in the default NodePort range. */
export const INGRESS_DEFAULT_PORTS: Record<IngressExposure, { http: number; https: number }> = {
    hostNetwork: { http: 80, https: 443 },
    nodePort: { http: 30080, https: 30443 },
};

/** The add-ons as written, before the cross-section checks fill in defaults that depend on hosts and network. */
export interface RawAddons {
    ingress: { enabled?: boolean; controller: IngressController; exposure: IngressExposure; nodes?: string[]; httpPort: number; httpsPort: number; gatewayApi: boolean; gatewayApiCrds: string };
    dashboard: { enabled?: boolean; host?: string; access: DashboardAccess; tlsCertificate?: string; tlsKeyGiven: boolean };
    metricsServer: { enabled?: boolean };
    smokeTest: { enabled?: boolean };
    imageRegistry?: string;
}

function parseEnabled(v: unknown, path: string, problems: Problems): boolean | undefined {
    if (isAbsent(v)) return undefined;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    problems.add(path, `must be true or false, got ${describe(v)}`);
    return undefined;
}

/** An add-on given as `true`/`false` is short for `{enabled: ...}`. */
function section(raw: unknown, path: string, keys: readonly string[], problems: Problems): Record<string, unknown> {
    if (isAbsent(raw)) return {};
    if (typeof raw === "boolean") return { enabled: raw };
    if (!isObject(raw)) {
        problems.add(path, `must be an object (e.g. {enabled: false}) or true/false, got ${describe(raw)}`);
        return {};
    }
    checkKeys(raw, keys, path, problems);
    return raw;
}

function parseChoice<T extends string>(v: unknown, choices: readonly T[], fallback: T, path: string, problems: Problems): T {
    if (isAbsent(v)) return fallback;
    if (typeof v === "string" && (choices as readonly string[]).includes(v)) return v as T;
    problems.add(path, `${show(v)} is not one of ${quoteList(choices)}`);
    return fallback;
}

/** Why `s` is not `host[:port][/path]` of a registry, or undefined. */
export function imageRegistryProblem(s: string): string | undefined {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return `give the registry without a scheme, as image names start (e.g. "mirror.example.com:5000/k8s")`;
    const m = /^([^/:]+)(?::([0-9]{1,5}))?((?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$/.exec(s);
    if (!m || !(m[1] === "localhost" || isDnsName(m[1]) || /^[0-9.]+$/.test(m[1])) || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
        return `is not a registry host[:port][/path] (e.g. "registry.example.com", "10.0.0.5:5000/mirror"; lowercase path components)`;
    }
    return undefined;
}

/** PEM blocks of `type` in `text`. */
function pemBlocks(text: string, type: string): string[] {
    return text.match(new RegExp(`-----BEGIN ${type}-----[\\s\\S]*?-----END ${type}-----`, "g")) ?? [];
}

export function parseAddons(raw: unknown, problems: Problems): RawAddons {
    const out: RawAddons = {
        ingress: {
            controller: "traefik", exposure: "hostNetwork", httpPort: 80, httpsPort: 443, gatewayApi: true, gatewayApiCrds: GATEWAY_API.url,
        },
        dashboard: { access: "view", tlsKeyGiven: false },
        metricsServer: {},
        smokeTest: {},
    };
    if (isAbsent(raw)) return out;
    if (!isObject(raw)) {
        problems.add("addons", `must be an object (e.g. {dashboard: {enabled: false}}), got ${describe(raw)}`);
        return out;
    }
    checkKeys(raw, ADDONS_KEYS, "addons", problems);

    // ingress
    const ip = "addons.ingress";
    const ing = section(raw["ingress"], ip, INGRESS_KEYS, problems);
    out.ingress.enabled = parseEnabled(ing["enabled"], child(ip, "enabled"), problems);
    out.ingress.controller = parseChoice(ing["controller"], INGRESS_CONTROLLERS, "traefik", child(ip, "controller"), problems);
    out.ingress.exposure = parseChoice(ing["exposure"], INGRESS_EXPOSURES, "hostNetwork", child(ip, "exposure"), problems);
    const defaults = INGRESS_DEFAULT_PORTS[out.ingress.exposure];
    out.ingress.httpPort = defaults.http;
    out.ingress.httpsPort = defaults.https;
    const nodes = ing["nodes"];
    if (!isAbsent(nodes)) {
        if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((n) => typeof n === "string")) {
            problems.add(child(ip, "nodes"), `must be a non-empty list of host names from hosts[].name, got ${describe(nodes)} (leave it out for every worker)`);
        } else {
            out.ingress.nodes = nodes as string[];
        }
    }
    const ports = ing["ports"];
    if (!isAbsent(ports)) {
        const pp = child(ip, "ports");
        if (!isObject(ports)) {
            problems.add(pp, `must be {http: PORT, https: PORT}, got ${describe(ports)}`);
        } else {
            checkKeys(ports, ["http", "https"], pp, problems);
            for (const k of ["http", "https"] as const) {
                if (isAbsent(ports[k])) continue;
                const n = parsePort(ports[k], child(pp, k), problems, defaults[k]);
                if (n === undefined) continue;
                if (out.ingress.exposure === "nodePort" && (n < 30000 || n > 32767)) {
                    problems.add(child(pp, k), `${n} is outside the NodePort range 30000-32767 (the API server's default --service-node-port-range): pick a port in it`);
                    continue;
                }
                if (k === "http") out.ingress.httpPort = n;
                else out.ingress.httpsPort = n;
            }
            if (out.ingress.httpPort === out.ingress.httpsPort) problems.add(pp, `http and https must be different ports`);
        }
    }
    const gw = ing["gatewayApi"];
    if (!isAbsent(gw)) {
        const gp = child(ip, "gatewayApi");
        const g = section(gw, gp, ["enabled", "crds"], problems);
        out.ingress.gatewayApi = parseEnabled(g["enabled"], child(gp, "enabled"), problems) ?? true;
        const crds = g["crds"];
        if (!isAbsent(crds)) {
            if (typeof crds !== "string" || crds.trim() === "") {
                problems.add(child(gp, "crds"), `must be a URL or a local file of the Gateway API CRD manifest, got ${describe(crds)}`);
            } else if (/^https?:\/\//.test(crds)) {
                out.ingress.gatewayApiCrds = crds;
            } else if (!fs.existsSync(crds)) {
                problems.add(child(gp, "crds"), `${show(crds)} does not exist (relative paths are relative to the Pulumi project directory): download ${GATEWAY_API.url} there on a machine with access`);
            } else {
                out.ingress.gatewayApiCrds = crds;
            }
        }
    }

    // dashboard
    const dp = "addons.dashboard";
    const dash = section(raw["dashboard"], dp, DASHBOARD_KEYS, problems);
    out.dashboard.enabled = parseEnabled(dash["enabled"], child(dp, "enabled"), problems);
    const host = dash["host"];
    if (!isAbsent(host)) {
        if (typeof host !== "string" || !isDnsName(host) || host.endsWith(".")) {
            problems.add(child(dp, "host"), `${show(host)} is not a DNS host name (e.g. "dashboard.example.com"): the dashboard is published at https://<host>/ through the ingress`);
        } else {
            out.dashboard.host = host.toLowerCase();
        }
    }
    out.dashboard.access = parseChoice(dash["access"], DASHBOARD_ACCESS, "view", child(dp, "access"), problems);
    const tls = dash["tls"];
    if (!isAbsent(tls)) {
        const tp = child(dp, "tls");
        if (!isObject(tls)) {
            problems.add(tp, `must be {certificate: PEM, key: PEM (secret)}, got ${describe(tls)}`);
        } else {
            checkKeys(tls, ["certificate", "key"], tp, problems);
            const cert = tls["certificate"];
            const key = tls["key"];
            if (isAbsent(cert) || isAbsent(key)) {
                problems.add(tp, `needs both certificate and key (leave tls out to have the program issue one from its ingress CA)`);
            }
            if (!isAbsent(cert)) {
                const blocks = typeof cert === "string" ? pemBlocks(cert, "CERTIFICATE") : [];
                let ok = blocks.length > 0;
                try {
                    for (const b of blocks) new crypto.X509Certificate(b);
                } catch {
                    ok = false;
                }
                if (!ok) problems.add(child(tp, "certificate"), `is not a PEM certificate (chain): give the server certificate first, then any intermediates`);
                else out.dashboard.tlsCertificate = (cert as string).trim() + "\n";
            }
            if (!isAbsent(key)) {
                let ok = typeof key === "string";
                if (ok) {
                    try {
                        crypto.createPrivateKey(key as string);
                    } catch {
                        ok = false;
                    }
                }
                // (never quoted: it is a private key)
                if (!ok) problems.add(child(tp, "key"), `is not a PEM private key without a passphrase (its value is not shown)`);
                else out.dashboard.tlsKeyGiven = true;
            }
            if (out.dashboard.tlsCertificate && out.dashboard.tlsKeyGiven) {
                try {
                    const c = new crypto.X509Certificate(pemBlocks(out.dashboard.tlsCertificate, "CERTIFICATE")[0]);
                    if (!c.checkPrivateKey(crypto.createPrivateKey(key as string))) {
                        problems.add(tp, `the key does not belong to the (first) certificate: give the matching pair`);
                    }
                } catch {
                    problems.add(tp, `the key does not belong to the (first) certificate: give the matching pair`);
                }
            }
        }
    }

    out.metricsServer.enabled = parseEnabled(section(raw["metricsServer"], "addons.metricsServer", ["enabled"], problems)["enabled"], "addons.metricsServer.enabled", problems);
    out.smokeTest.enabled = parseEnabled(section(raw["smokeTest"], "addons.smokeTest", ["enabled"], problems)["enabled"], "addons.smokeTest.enabled", problems);

    const reg = raw["imageRegistry"];
    if (!isAbsent(reg)) {
        const why = typeof reg === "string" ? imageRegistryProblem(reg.trim()) : `must be a string`;
        if (why) problems.add("addons.imageRegistry", `${show(reg)} ${why}`);
        else out.imageRegistry = (reg as string).trim().replace(/\/+$/, "");
    }
    return out;
}

/** The dashboard's default host name: `dashboard.<cluster>.internal` when the cluster name is a DNS label. */
export function defaultDashboardHost(clusterName: string): string {
    const label = clusterName.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 63) || "cluster";
    return `dashboard.${isDnsLabel(label) ? label : "cluster"}.internal`;
}
