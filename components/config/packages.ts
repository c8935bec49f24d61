/** The `packages` section. */
import { LocalRepositorySpec, PackagesSpec } from "../model";
import { Problems, isObject, isAbsent, child, show, describe, checkKeys } from "./problems";

const PACKAGES_KEYS = ["localRepository", "kubernetesRepository", "containerdRepository"] as const;
const LOCAL_REPOSITORY_KEYS = ["apt", "rpm", "keyUrl"] as const;
const REPO_URL = /^(https?|file):\/\/[^\s'"\\]+$/;

export function parsePackages(raw: unknown, problems: Problems): PackagesSpec {
    const result: PackagesSpec = {};
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add("packages", `must be an object like {localRepository: {apt: "http://10.0.0.5/debs ./"}}, got ${describe(raw)}`);
        return result;
    }
    checkKeys(raw, PACKAGES_KEYS, "packages", problems);
    // Mirrors of the two upstream repositories, with the same layout (the scripts append the paths).
    const mirrors = [
        ["kubernetesRepository", "pkgs.k8s.io's base, e.g. \"https://mirror.example/pkgs.k8s.io/core:/stable:\" (the host appends /v1.36/deb/ or /v1.36/rpm/)"],
        ["containerdRepository", "download.docker.com/linux's base, e.g. \"https://mirror.example/docker-ce/linux\" (the host appends /debian, /ubuntu or /centos)"],
    ] as const;
    for (const [key, what] of mirrors) {
        const v = raw[key];
        if (isAbsent(v)) continue;
        if (typeof v !== "string" || !/^https?:\/\/[^\s'"\\]+$/.test(v.trim()) || /[?#]/.test(v)) {
            problems.add(child("packages", key), `${show(v)} is not a repository base URL: give the http(s) URL of a mirror of ${what}`);
        } else if (!isAbsent(raw["localRepository"])) {
            problems.add(child("packages", key), `has no effect with packages.localRepository, which replaces both upstream repositories: remove one of them`);
        } else {
            result[key] = v.trim().replace(/\/+$/, "");
        }
    }
    const repo = raw["localRepository"];
    if (isAbsent(repo)) return result;
    const path = "packages.localRepository";
    if (!isObject(repo)) {
        problems.add(path, `must be an object with apt, rpm and/or keyUrl, got ${describe(repo)}`);
        return result;
    }
    checkKeys(repo, LOCAL_REPOSITORY_KEYS, path, problems);
    const local: LocalRepositorySpec = {};
    const apt = repo["apt"];
    if (!isAbsent(apt)) {
        const parts = typeof apt === "string" ? apt.trim().split(/\s+/) : [];
        if (parts.length < 2 || !REPO_URL.test(parts[0]) || parts.slice(1).some((p) => !/^[A-Za-z0-9._\/-]+$/.test(p))) {
            problems.add(child(path, "apt"), `${show(apt)} is not an apt source: write "URL SUITE [COMPONENT...]" without "deb" or options, e.g. "http://10.0.0.5/debs ./" (flat repository) or "http://mirror.example/k8s stable main"`);
        } else {
            local.apt = parts.join(" ");
        }
    }
    const rpm = repo["rpm"];
    if (!isAbsent(rpm)) {
        if (typeof rpm !== "string" || !REPO_URL.test(rpm.trim())) {
            problems.add(child(path, "rpm"), `${show(rpm)} is not a repository URL: use the dnf baseurl, e.g. "http://10.0.0.5/rpms/"`);
        } else {
            local.rpm = rpm.trim();
        }
    }
    const keyUrl = repo["keyUrl"];
    if (!isAbsent(keyUrl)) {
        if (typeof keyUrl !== "string" || !REPO_URL.test(keyUrl.trim())) {
            problems.add(child(path, "keyUrl"), `${show(keyUrl)} is not a URL: give the repository's signing key URL, e.g. "http://10.0.0.5/key.gpg", or leave it out to trust the repository unsigned`);
        } else {
            local.keyUrl = keyUrl.trim();
        }
    }
    if (isAbsent(apt) && isAbsent(rpm)) {
        problems.add(path, `needs apt and/or rpm: the repository that serves containerd.io, kubelet, kubeadm, kubectl and kubernetes-cni for your hosts' package manager`);
    }
    if (local.apt || local.rpm) result.localRepository = local;
    return result;
}

