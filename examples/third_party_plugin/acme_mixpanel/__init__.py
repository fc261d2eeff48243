"""acme-mixpanel: a tenant plugin and a JSON-lines file transport for mixpanel-core."""
