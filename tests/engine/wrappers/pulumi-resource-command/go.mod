// Wrapper module: pulumi-resource-command. Not buildable on these machines today: the Go
// module proxy does not serve the pinned module (see tests/engine/README.md).
// Kept so tests/engine/build-tools.sh builds it once the proxy does.
module engine.local/wrappers/pulumi-resource-command

go 1.25.0

require github.com/pulumi/pulumi-command/provider v1.2.1

tool github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command
