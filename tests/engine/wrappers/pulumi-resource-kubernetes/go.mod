// Wrapper module: pulumi-resource-kubernetes. Not buildable on these machines today: the Go
// module proxy does not serve the pinned module (see tests/engine/README.md).
// Kept so tests/engine/build-tools.sh builds it once the proxy does.
module engine.local/wrappers/pulumi-resource-kubernetes

go 1.26.0

require github.com/pulumi/pulumi-kubernetes/provider/v4 v4.34.2

tool github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes
