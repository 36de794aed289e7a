# credbroker-broker: what a running broker (AppRole role "credbroker") may do.
# Read-only, and only its own prefix kv/trading/. Nothing else in Vault.
# Generated from credbroker/testing/openbao.py (POLICY_TEMPLATES); edit it there.

# Read credential values (KV v2 data endpoint).
path "kv/data/trading/*" {
  capabilities = ["read"]
}

# Read version metadata (current version, deletion state) and list paths under the prefix.
path "kv/metadata/trading/*" {
  capabilities = ["read", "list"]
}

# Token self-service. Also granted by the "default" policy, which stays attached;
# repeated here so the broker keeps working if an operator trims "default".
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
