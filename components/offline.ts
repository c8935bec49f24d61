/**
 * Fully offline installation (`offline` in the stack config): which files go
 * to each host, where, and how prepare finds them.
 *
 * The files travel with `remote.CopyToRemote` (SFTP as the SSH user), one
 * resource per file and host, into the SSH user's home (SFTP cannot write
 * root paths for a sudo user: UPSTREAM.md). The
 * staged name carries the file's hash, so a changed archive is a new copy.
 * prepare (as root) checks each copy against the hash in its command,
 * unpacks the package repository to OFFLINE_REPO_DIR or imports the
 * images, records that, and removes the staged copy (no second copy of
 * hundreds of MB stays on the host). CopyToRemote never deletes on destroy;
 * uninstall removes OFFLINE_REPO_DIR and the import records with the rest
 * of the program's state.
 */
import * as path from "path";
import { ClusterSpec, OfflineFile } from "./model";

/** Where prepare unpacks the offline package repository on a host (a file: repository). */
export const OFFLINE_REPO_DIR = "/var/cache/kubeadm-pulumi/packages";

/**
 * Prefix of a staged file, directly in the SSH user's home (SFTP paths are
 * relative to it). No subdirectory: pulumi-command's copy creates the file
 * with SFTP `Create`, and whether it makes missing parent directories
 * depends on its version (remote/copyController.go `copyFile`).
 */
export const OFFLINE_STAGING_PREFIX = ".kubeadm-pulumi-offline-";

/** One file copied to every host. */
export interface OfflineCopy {
    /** Resource name suffix: `offline-packages`, `offline-image-<n>`. */
    step: string;
    file: OfflineFile;
    /** Staged path, relative to the SSH user's home: `<prefix><first 12 hex of sha256>-<file name>`. */
    remotePath: string;
}

function stagedName(f: OfflineFile): string {
    return `${OFFLINE_STAGING_PREFIX}${f.sha256.slice(0, 12)}-${path.basename(f.path).replace(/[^A-Za-z0-9._-]/g, "_")}`;
}

/** The files of `spec.offline` as copies. */
export function offlineCopies(spec: ClusterSpec): OfflineCopy[] {
    const o = spec.offline;
    if (!o) return [];
    return [
        ...(o.packages ? [{ step: "offline-packages", file: o.packages, remotePath: stagedName(o.packages) }] : []),
        ...o.images.map((f, i) => ({ step: `offline-image-${i}`, file: f, remotePath: stagedName(f) })),
    ];
}

/** prepare's line for one staged file: `<sha256> <path relative to the SSH user's home>`. */
export function offlineLine(c: OfflineCopy): string {
    return `${c.file.sha256} ${c.remotePath}`;
}
