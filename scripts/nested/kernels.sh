# The nested machine's host kernels: where scripts/setup.sh caches each one. Sourced (bash) by
# test.sh, run.sh and build.sh; defines no behaviour of its own.
#
#   NESTED_KERNELS          versions the suite runs on, in order (default: both below)
#   nested_kernel_dir VER   the cache directory of VER: `Image`, `modules/<release>/`,
#                           `kernel-package`
#   nested_kernel_release VER
#                           the release (`uname -r` in the machine), from the modules directory
#
# 6.1 is Debian 12's kernel, at the top of the cache (where it always was); 6.12 is Debian 13's,
# in the `6.12` subdirectory.
NESTED_CACHE=${KVMDBG_CACHE:-/var/cache/kvmdbg}
NESTED_KERNELS_ALL="6.1 6.12"
NESTED_KERNELS=${NESTED_KERNELS:-$NESTED_KERNELS_ALL}

nested_kernel_known() {
  case " $NESTED_KERNELS_ALL " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

nested_kernel_dir() {
  if [ "$1" = 6.1 ]; then echo "$NESTED_CACHE"; else echo "$NESTED_CACHE/$1"; fi
}

nested_kernel_release() {
  local d
  d=$(find -H "$(nested_kernel_dir "$1")/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n1)
  [ -n "$d" ] && basename "$d"
}
