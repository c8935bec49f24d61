// Wrapper module: the pulumi-command resource plugin (provider/go.mod at
// v1.2.1 has no replace directives).
// The Go module proxy reachable from this project's machines answers 404 for
// github.com/pulumi/pulumi-command/provider@v1.2.1 (the repo tags v1.2.1 at
// its root, not provider/v1.2.1, so Go cannot resolve that version). It builds
// from a local clone instead: ENGINE_GIT_PULUMI_PULUMI_COMMAND=<clone> (see README);
// build-tools.sh then replaces the module with ./src and runs go mod tidy.
module engine.local/wrappers/pulumi-resource-command

go 1.25.0

require github.com/pulumi/pulumi-command/provider v1.2.1

tool github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command
