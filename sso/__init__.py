"""ENT single sign-on: a CAS server over the university's LDAP directory.

Kept light on purpose: importing :mod:`sso.cas` or :mod:`sso.tickets` never pulls in Flask.
"""

__version__ = "0.1.0"
