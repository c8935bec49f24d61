// Wrapper module: the pulumi-random resource plugin.
// The Go module proxy reachable from this project's machines does not serve
// github.com/pulumi/pulumi-random/provider/v4 (403). It builds from a local
// clone instead (ENGINE_GIT_PULUMI_PULUMI_RANDOM, see README): build-tools.sh
// extracts provider/ at the tag, which includes the nested shim module, and
// repeats provider/go.mod's replace directives (the shim => ./shim and the
// pulumi terraform-plugin-sdk/v2 fork) in a scratch copy of this module.
// (In proxy mode the shim would have to be supplied here: the module zip
// leaves out the nested provider/shim module.)
module engine.local/wrappers/pulumi-resource-random

go 1.25.11

require github.com/pulumi/pulumi-random/provider/v4 v4.21.2

tool github.com/pulumi/pulumi-random/provider/v4/cmd/pulumi-resource-random
