# Sourced by deploy/backup.sh and deploy/restore.sh.
# conf KEY.PATH: a value of the TOML file $CONFIG; relative paths made absolute against its folder.
conf() {
  python3 - "$CONFIG" "$1" <<'PY'
import os, sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
v = cfg
for k in sys.argv[2].split("."):
    v = v[k]
base = os.path.dirname(os.path.abspath(sys.argv[1]))
if sys.argv[2].startswith("paths.") and not os.path.isabs(v):
    v = os.path.join(base, v)
if sys.argv[2] == "database_url" and v.startswith("sqlite://") and not v[9:].startswith("/"):
    v = "sqlite://" + os.path.join(base, v[9:])
print(v)
PY
}
