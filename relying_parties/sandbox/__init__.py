"""The sandbox relying parties (DESIGN §5.2, §5.3): their organisations, services, clients and keys.

seed.py and keys.py register them on the platform (`mydata sandbox seed`). Their web apps, the
integrators' reference code, are bank.py and school.py on webapp.py (the web layer),
mydata_client.py (the protocol) and applications.py (their records); serving.py mounts them.
"""
