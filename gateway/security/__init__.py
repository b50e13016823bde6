"""Security pieces shared by every connection: TLS contexts, command validation, failure
classification and secret redaction."""
