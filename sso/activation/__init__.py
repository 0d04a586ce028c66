"""First connection (« 1ère connexion ») and password reset (« Problème de connexion »), without Flask.

- :mod:`sso.activation.settings` — the ``activation`` section of the configuration;
- :mod:`sso.activation.tokens` — signed links: one salt per purpose, deadline, password-state fingerprint;
- :mod:`sso.activation.policy` — the password rules as pure functions (CNIL 2022, NIST SP 800-63B);
- :mod:`sso.activation.flow` — request a link, open it, complete it, invite.

Kept empty on purpose: loading the settings does not import zxcvbn or itsdangerous.
"""
