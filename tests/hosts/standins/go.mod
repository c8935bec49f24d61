module kubeadm-pulumi/standins

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	gopkg.in/yaml.v3 v3.0.1
)
