"""What every blueprint shares: page layout and ownership lookups, the sidebar, the owner's
identity, security headers, the access gate, rate limits, health, assets and log masking."""
