// Wrapper module: pulumi-language-nodejs. Not buildable on these machines today: the Go
// module proxy does not serve the pinned module (see tests/engine/README.md).
// Kept so tests/engine/build-tools.sh builds it once the proxy does.
module engine.local/wrappers/pulumi-language-nodejs

go 1.25.11

require (
	github.com/pulumi/pulumi/pkg/v3 v3.248.0
	github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 v3.248.0
	github.com/pulumi/pulumi/sdk/v3 v3.248.0
)

tool github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
