"""Who may call: bearer tokens, JWKS, derived keys, origins, SMART sign-in."""
