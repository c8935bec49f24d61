// Wrapper module: the pulumi-tls resource plugin.
// The Go module proxy reachable from this project's machines does not serve
// github.com/pulumi/pulumi-tls/provider/v5 (403). It builds from a local
// clone instead (ENGINE_GIT_PULUMI_PULUMI_TLS, see README): build-tools.sh
// extracts provider/ at the tag, which includes the nested shim module, and
// repeats provider/go.mod's replace directives (the shim => ./shim and the
// pulumi terraform-plugin-sdk/v2 fork) in a scratch copy of this module.
// (In proxy mode the shim would have to be supplied here: the module zip
// leaves out the nested provider/shim module.)
module engine.local/wrappers/pulumi-resource-tls

go 1.25.11

require github.com/pulumi/pulumi-tls/provider/v5 v5.6.1

tool github.com/pulumi/pulumi-tls/provider/v5/cmd/pulumi-resource-tls
