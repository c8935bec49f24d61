/** A plain HTTP file server for the sandbox tiers (the stand-in or real apt repository the hosts install from). */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";

/** Serve a directory over HTTP on `address` (a free port). */
export function serveDirectory(dir: string, address: string): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer((req, res) => {
        const rel = decodeURIComponent((req.url ?? "/").split("?")[0]).replace(/^\/+/, "");
        const file = path.join(dir, rel);
        if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { "content-length": fs.statSync(file).size });
        fs.createReadStream(file).pipe(res);
    });
    return new Promise((resolve) => server.listen(0, address, () => resolve({ server, port: (server.address() as { port: number }).port })));
}
