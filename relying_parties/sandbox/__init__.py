"""The sandbox relying parties (DESIGN §5.2, §5.3): their organisations, services, clients and keys."""
