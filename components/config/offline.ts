/**
 * The `offline` section: install without any download, from archives on the
 * machine running Pulumi that the program copies to every host.
 *
 * - `packages`: one archive (.tar, .tar.gz or .tgz) of a package repository
 *   holding containerd.io, kubelet, kubeadm, kubectl and kubernetes-cni: a
 *   flat apt repository (`Packages` or `Packages.gz` at its top) and/or an
 *   rpm repository (`repodata/repomd.xml`). The host unpacks it and uses it
 *   as `packages.localRepository` (a file: repository), so the two are
 *   exclusive. One archive, not a directory: copied as one file, its hash
 *   says exactly when it changed.
 * - `images`: image archives (`ctr images export`, `docker save`, `skopeo
 *   copy ... oci-archive:`), imported with `ctr -n k8s.io images import`.
 *
 * Each file is hashed here (SHA-256, read once per run): the hash is in the
 * prepare command, so a changed archive re-runs prepare, and the host checks
 * the copy against it.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import { OfflineFile, OfflineSpec } from "../model";
import { Problems, isObject, isAbsent, child, item, show, describe, checkKeys } from "./problems";

const OFFLINE_KEYS = ["packages", "images"] as const;
const EXAMPLE = `e.g. {packages: ./offline/packages.tar.gz, images: [./offline/images.tar]}`;

function sha256File(path: string): string {
    const hash = crypto.createHash("sha256");
    const fd = fs.openSync(path, "r");
    try {
        const buf = Buffer.alloc(1 << 20);
        let n: number;
        while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
    } finally {
        fs.closeSync(fd);
    }
    return hash.digest("hex");
}

/** A readable regular file at `raw`, hashed; or a problem at `path`. */
function offlineFile(raw: unknown, path: string, what: string, problems: Problems): OfflineFile | undefined {
    if (typeof raw !== "string" || raw.trim() === "") {
        problems.add(path, `must be the path of ${what} on the machine running Pulumi, got ${describe(raw)}`);
        return undefined;
    }
    let stat: fs.Stats;
    try {
        stat = fs.statSync(raw);
    } catch {
        problems.add(path, `${show(raw)} does not exist (relative paths are relative to the Pulumi project directory)`);
        return undefined;
    }
    if (!stat.isFile()) {
        problems.add(path, `${show(raw)} is not a file: give ${what}`);
        return undefined;
    }
    return { path: raw, sha256: sha256File(raw) };
}

export function parseOffline(raw: unknown, problems: Problems): OfflineSpec | undefined {
    if (isAbsent(raw)) return undefined;
    if (!isObject(raw)) {
        problems.add("offline", `must be an object with packages and/or images, got ${describe(raw)} (${EXAMPLE})`);
        return undefined;
    }
    checkKeys(raw, OFFLINE_KEYS, "offline", problems);
    const before = problems.count;
    const result: OfflineSpec = { images: [] };
    if (!isAbsent(raw["packages"])) {
        const p = raw["packages"];
        if (typeof p === "string" && !/\.(tar|tar\.gz|tgz)$/.test(p)) {
            problems.add("offline.packages", `${show(p)} is not a .tar, .tar.gz or .tgz archive: pack the repository directory, e.g. \`tar -C ./repo -czf packages.tar.gz .\` (a flat apt repository with Packages at its top, and/or an rpm repository with repodata/)`);
        } else {
            const f = offlineFile(p, "offline.packages", "a .tar.gz of the package repository", problems);
            if (f) result.packages = f;
        }
    }
    const images = raw["images"];
    if (!isAbsent(images)) {
        if (!Array.isArray(images)) {
            problems.add("offline.images", `must be a list of image archive paths, got ${describe(images)} (${EXAMPLE})`);
        } else {
            images.forEach((v, i) => {
                const f = offlineFile(v, item("offline.images", i), "an image archive (OCI or docker save format)", problems);
                if (f && !result.images.some((x) => x.sha256 === f.sha256)) result.images.push(f);
            });
        }
    }
    if (isAbsent(raw["packages"]) && isAbsent(images)) problems.add("offline", `needs packages and/or images (${EXAMPLE})`);
    return problems.count === before ? result : undefined;
}

/** Conflicts with the `packages` section (checked once both are parsed). */
export function checkOfflineAgainstPackages(offline: OfflineSpec | undefined, packages: Record<string, unknown>, problems: Problems): void {
    if (!offline?.packages) return;
    for (const key of ["localRepository", "kubernetesRepository", "containerdRepository"]) {
        if (!isAbsent(packages[key])) {
            problems.add(child("packages", key), `cannot be combined with offline.packages, which is the hosts' only package repository: remove one of them`);
        }
    }
}
