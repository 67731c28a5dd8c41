"""Privacy by design: pseudonymisation, disclosure control and the audit log."""
