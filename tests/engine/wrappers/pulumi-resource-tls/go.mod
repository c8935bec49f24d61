// Wrapper module: pulumi-resource-tls. Not buildable on these machines today: the Go
// module proxy does not serve the pinned module (see tests/engine/README.md).
// Kept so tests/engine/build-tools.sh builds it once the proxy does.
module engine.local/wrappers/pulumi-resource-tls

go 1.25.11

require github.com/pulumi/pulumi-tls/provider/v5 v5.6.1

tool github.com/pulumi/pulumi-tls/provider/v5/cmd/pulumi-resource-tls
