// Wrapper module: the pulumi-command resource plugin.
// UNVERIFIED: the Go module proxy reachable from this project's machines
// answers 404 for github.com/pulumi/pulumi-command/provider@v1.2.1 (the repo
// tags v1.2.1 at its root, not provider/v1.2.1), so there is no go.sum yet.
// When it is served, repeat provider/go.mod's non-local replace directives.
module engine.local/wrappers/pulumi-resource-command

go 1.25.11

require github.com/pulumi/pulumi-command/provider v1.2.1

tool github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command
