# shellcheck shell=bash source-path=SCRIPTDIR
# prepare: make the host ready to run a node (idempotent): swap off, kernel
# modules, sysctls, containerd 2.x, pinned kubelet/kubeadm/kubectl, and the
# images init or join will need. The package-manager family is read from
# /etc/os-release here, on the host, so that this step's text is the same
# for every OS and known at `pulumi preview` (preflight already refused an
# unsupported OS). Shared steps: prepare-common.sh; family steps:
# prepare-debian.sh (apt) and prepare-rhel.sh (dnf).
# Vars: see prepare-common.sh.

# prepare_family: "debian" or "rhel" from /etc/os-release ID and ID_LIKE, or nothing.
prepare_family() {
    local words
    words=" $(os_release_field ID) $(os_release_field ID_LIKE) "
    case $words in
    *" debian "* | *" ubuntu "*) printf 'debian' ;;
    *" rhel "* | *" centos "* | *" fedora "* | *" rocky "* | *" almalinux "*) printf 'rhel' ;;
    esac
}

main() {
    local family
    family=$(prepare_family)
    # shellcheck source=prepare-common.sh
    source "$KP_LIB/prepare-common.sh"
    case $family in
    debian)
        # shellcheck source=prepare-debian.sh
        source "$KP_LIB/prepare-debian.sh"
        ;;
    rhel)
        # shellcheck source=prepare-rhel.sh
        source "$KP_LIB/prepare-rhel.sh"
        ;;
    *) die "cannot tell the package manager of this host from /etc/os-release (ID=$(os_release_field ID), ID_LIKE=$(os_release_field ID_LIKE)); supported: Debian/Ubuntu (apt) and the RHEL family (dnf)" ;;
    esac
    prepare_main
}

kp_step main "$@"
