# credbroker-ops: what an operator token may do to the broker's credentials.
# Write, rotate and delete under kv/trading/ only; no policy, auth or mount changes.
# Generated from credbroker/testing/openbao.py (POLICY_TEMPLATES); edit it there.

# Write and read credential values ("patch" lets `bao kv patch` rotate a single field).
path "kv/data/trading/*" {
  capabilities = ["create", "update", "patch", "read", "list"]
}

# Inspect versions, list paths, delete a path with all its versions.
path "kv/metadata/trading/*" {
  capabilities = ["read", "list", "delete"]
}

# Soft-delete, restore and permanently destroy specific versions.
path "kv/delete/trading/*" {
  capabilities = ["update"]
}

path "kv/undelete/trading/*" {
  capabilities = ["update"]
}

path "kv/destroy/trading/*" {
  capabilities = ["update"]
}
