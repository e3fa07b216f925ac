"""The sandbox agencies (DESIGN §4.3): four agencies' data providers as one real WSGI app.

``catalogue`` says who they are, ``data`` what they hold about the personas, ``keys`` their signing
keys (generated into the instance folder), ``faults`` what can be made to go wrong, ``agency`` the
app speaking the provider protocol, and ``seed`` how `mydata sandbox seed` registers them.
"""
