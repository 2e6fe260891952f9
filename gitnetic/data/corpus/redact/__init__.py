"""Secret redaction: gitleaks' vendored rule set (``rules``, ``gitleaks/``), secret-named high-entropy
values (``generic``) and the one pass over a document that applies both (``redactor``)."""
