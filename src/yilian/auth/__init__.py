"""Who the caller is: users and their roles at organizations, passwords, access tokens.

    tables.py     auth_user, auth_role, auth_key (in the store's metadata: one schema)
    passwords.py  argon2id hashes
    roles.py      the roles and the SMART scopes each may be given
    service.py    creating users, signing in (with lockout), issuing tokens
    tokens.py     access tokens: JWTs signed with the server's own key (authlib.jose), and
                  the caller's fhir.access.Access from one

What a caller may then do with FHIR resources is fhir.access (scopes) and fhir.guard.
"""
