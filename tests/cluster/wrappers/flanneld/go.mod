// Wrapper module: builds flanneld from github.com/flannel-io/flannel v0.28.4.
// flannel's go.mod requires tencentcloud-sdk-go/tencentcloud/common v1.3.79
// (for its tencentvpc backend), which the Go module proxy refuses ("403 This
// module version is not available"); v1.3.78, the nearest served release, is
// used instead. Nothing else differs from flannel's own requirements.
module cluster.local/wrappers/flanneld

go 1.25.0

require github.com/flannel-io/flannel v0.28.4

replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common => github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common v1.3.78
