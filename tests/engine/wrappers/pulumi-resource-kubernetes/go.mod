// Wrapper module: the pulumi-kubernetes resource plugin.
// The Go module proxy reachable from this project's machines does not serve
// github.com/pulumi/pulumi-kubernetes/provider/v4 (403). It builds from a
// local clone instead (ENGINE_GIT_PULUMI_PULUMI_KUBERNETES, see README):
// build-tools.sh extracts provider/ and sdk/ at the tag (provider/go.mod
// replaces sdk/v4 => ../sdk) and repeats provider/go.mod's replace
// directives in a scratch copy of this module.
module engine.local/wrappers/pulumi-resource-kubernetes

go 1.26.0

require github.com/pulumi/pulumi-kubernetes/provider/v4 v4.34.2

tool github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes
