// Wrapper module: the pulumi-kubernetes resource plugin.
// UNVERIFIED: the Go module proxy reachable from this project's machines does
// not serve github.com/pulumi/pulumi-kubernetes/provider/v4 (403), so there is
// no go.sum yet. When it is served, repeat provider/go.mod's version-pinning
// replace directives here.
module engine.local/wrappers/pulumi-resource-kubernetes

go 1.25.11

require github.com/pulumi/pulumi-kubernetes/provider/v4 v4.34.2

tool github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes
