/**
 * `npm run up | preview | destroy | kubeconfig | pulumi`: see ./pulumi.ts and
 * docs/environments.md. Relative paths are taken from where npm was started.
 */
import * as path from "path";
import { main } from "./pulumi";

main(process.argv.slice(2), {
    root: path.resolve(__dirname, "..", ".."),
    env: process.env,
    cwd: process.env["INIT_CWD"] ?? process.cwd(),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
}).then(
    (code) => process.exit(code),
    (e: Error) => {
        process.stderr.write(`${e.stack ?? e.message}\n`);
        process.exit(1);
    },
);
