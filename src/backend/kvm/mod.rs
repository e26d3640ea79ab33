//! Real KVM backend (aarch64 Linux hosts only). Implemented on the `kvm` branch.
