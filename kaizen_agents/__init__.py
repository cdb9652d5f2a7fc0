"""The original's newer import path (``kaizen_agents``), kept so its users' imports work here."""
