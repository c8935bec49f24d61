// Wrapper module: the Node.js language host. Its own go.mod replaces
// pkg/v3 and sdk/v3 with local paths; pin both to the CLI's release here.
// UNVERIFIED: the Go module proxy reachable from this project's machines does
// not serve this module (403 "This module version is not available"), so this
// wrapper has no go.sum yet; build-tools.sh runs `go mod tidy` in a scratch
// copy when the module becomes available. Check its go.mod for further
// non-local replace directives and repeat them here.
module engine.local/wrappers/pulumi-language-nodejs

go 1.25.11

require (
	github.com/pulumi/pulumi/pkg/v3 v3.248.0
	github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 v3.248.0
	github.com/pulumi/pulumi/sdk/v3 v3.248.0
)

tool github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
