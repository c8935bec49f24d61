/**
 * The stand-in packages validate what they are given (tests/hosts/standins/
 * selftest.sh): the kubeadm stand-in decodes the program's own rendered
 * v1beta4 configs strictly and rejects an unknown field, a v1beta3-style map,
 * the leftover token placeholder and a CA key that does not match; the
 * containerd stand-in refuses Docker's default config; kubectl refuses a bad
 * bootstrap-token Secret. A stand-in that accepted anything would make the
 * lifecycle tier prove nothing.
 */
import { spawnSync } from "child_process";
import * as path from "path";

test("stand-in self-test: valid inputs accepted, invalid ones rejected", () => {
    const r = spawnSync("bash", [path.join(__dirname, "standins/selftest.sh")], { encoding: "utf8", timeout: 10 * 60 * 1000 });
    const tail = (r.stdout + r.stderr).split("\n").slice(-15).join("\n");
    expect({ status: r.status, tail }).toEqual({ status: 0, tail: expect.any(String) });
    expect(r.stdout + r.stderr).toMatch(/unknown field/);
}, 10 * 60 * 1000);
