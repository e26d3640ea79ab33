//! The machine: memory map, loader, devices, vCPU threads.
