# Sourced by the scripts for their arguments: --help prints the comment at the top of the
# script, and a script that takes no argument refuses any before it does anything.

settings_hint="; settings are environment variables (--help lists the settings)"

# The opening comment of the running script, without its '#'.
print_usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# no_arguments NAME HINT ARGS...: the usage and exit 0 on --help; exit 2, naming the argument
# (then HINT), on any other.
no_arguments() {
  local name=$1 hint=$2
  shift 2
  case ${1:-} in
    -h|--help) print_usage; exit 0 ;;
    '') ;;
    *) echo "$name: unexpected argument '$1'$hint" >&2; exit 2 ;;
  esac
}
