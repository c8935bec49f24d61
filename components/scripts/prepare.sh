# shellcheck shell=bash source-path=SCRIPTDIR
# prepare: make the host ready to run a node (idempotent): swap off, kernel
# modules, sysctls, containerd 2.x, pinned kubelet/kubeadm/kubectl, and the
# images init or join will need. The package-manager family is read from
# /etc/os-release here, on the host, so that this step's text is the same
# for every OS and known at `pulumi preview` (preflight already refused an
# unsupported OS). Shared steps: prepare-common.sh; family steps:
# prepare-debian.sh (apt) and prepare-rhel.sh (dnf).
# Vars: see prepare-common.sh.

# prepare_family: "debian" or "rhel" for a supported system; for another one
# (run only when preflight.ignore lists `os`) the family its os-release ID_LIKE
# names, with a warning; nothing when there is none.
prepare_family() {
    kp_os_detect
    if [[ -n $KP_OS_FAMILY ]]; then
        printf '%s' "$KP_OS_FAMILY"
        return 0
    fi
    local like
    like=$(kp_os_family_like)
    [[ -z $like ]] || warn "unsupported operating system $KP_OS_NAME (supported: $KP_SUPPORTED_OS): preparing it as the $like family, untested"
    printf '%s' "$like"
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
    *)
        kp_os_detect
        die "unsupported operating system $KP_OS_NAME: neither apt (Debian family) nor dnf (RHEL family) by its os-release ID/ID_LIKE; supported: $KP_SUPPORTED_OS"
        ;;
    esac
    prepare_main
}

kp_step main "$@"
