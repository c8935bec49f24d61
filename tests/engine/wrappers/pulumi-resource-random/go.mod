// Wrapper module: pulumi-resource-random. Not buildable on these machines today: the Go
// module proxy does not serve the pinned module (see tests/engine/README.md).
// Kept so tests/engine/build-tools.sh builds it once the proxy does.
module engine.local/wrappers/pulumi-resource-random

go 1.25.11

require github.com/pulumi/pulumi-random/provider/v4 v4.21.2

tool github.com/pulumi/pulumi-random/provider/v4/cmd/pulumi-resource-random
